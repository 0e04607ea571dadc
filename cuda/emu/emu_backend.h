#pragma once
// "cuda-emu": the CUDA backend's custom kernels, compiled by g++ from cuda/kernels/*.cu and run by
// the emulator, behind the Backend interface, so the parity suite compares them with the host
// backend in every CI run.
//
//   - Memory is emulated device memory (device_memory.h): tensors report Device{Cuda, 0}, so a
//     caller that reads device memory without copying it to the host fails here as on a GPU.
//   - Each op does what cuda::CudaBackend (cuda/cuda_backend.cpp) does with the same launchers
//     and the same validation flags and messages; keep the two in step.
//   - Vendor-library ops are not emulated: gemm (cuBLAS) runs on the host backend over the same
//     memory. Every op records how it ran; op_report() lists "emulated: <kernels>" or
//     "host fallback: <why>" per op.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "host/backend/backend.h"

namespace tessera::emu {

enum class OpPath : uint8_t { Emulated = 0, HostFallback = 1, Runtime = 2 };

struct OpRecord {
  std::string op;
  OpPath path = OpPath::Emulated;
  std::vector<std::string> kernels;  // emulated kernels this op launched (sorted, unique)
  std::string note;                  // why a fallback, or what a runtime op did
  uint64_t calls = 0;
};

// The backend, for tessera::make_backend("cuda-emu"). With TESSERA_EMU_REPORT=stderr (or a file
// path) in the environment, format_report() is written there when the process exits.
std::unique_ptr<Backend> create_backend();

// How each op ran in this process, sorted by op name.
std::vector<OpRecord> op_records();
// "op | calls | path" lines, then the kernel table of grid_launch.h's format_kernel_report().
std::string format_report();

}  // namespace tessera::emu
