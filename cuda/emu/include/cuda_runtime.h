#pragma once
// Stand-in for the CUDA toolkit's cuda_runtime.h in the emulation build: the runtime API
// (cuda_runtime_api.h) plus the language surface nvcc's header brings into a translation unit
// (execution qualifiers, dim3 and the vector types, device functions), from the emulator
// (cuda/emu/emulator.h). Kernels still launch through TESSERA_LAUNCH (cuda/launch.cuh).
#include "cuda/emu/emulator.h"
#include "cuda_runtime_api.h"
