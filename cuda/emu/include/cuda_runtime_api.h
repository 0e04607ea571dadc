#pragma once
// Stand-in for the CUDA toolkit's cuda_runtime_api.h in the emulation build: the runtime API that
// tessera's CUDA code calls (cuda/*.cpp, embeddings/device_*.cpp), served by the emulated runtime
// (cuda/emu/runtime_api.h; devices, streams, events, pinned memory: cuda/emu/README.md,
// "Runtime"). Only emulation targets put cuda/emu/include on their include path.
#include "cuda/emu/runtime_api.h"
