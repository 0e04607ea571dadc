#pragma once
// What the NCCL stand-in (cuda/emu/nccl_emu.cpp, declared in cuda/emu/include/nccl.h) did in this
// process: tests count the GPU path's calls and bytes with it.
#include <cstdint>

namespace tessera::emu {

struct NcclCounters {
  int64_t comms_created = 0;
  int64_t allreduce_calls = 0;  // ncclAllReduce calls carried out
  int64_t allreduce_bytes = 0;  // their payload: count x the datatype's size
  int64_t groups = 0;           // outermost ncclGroupStart/ncclGroupEnd pairs
};

NcclCounters nccl_counters();

}  // namespace tessera::emu
