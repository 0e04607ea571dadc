#pragma once
// The two reasons a GPU case may skip, each with its own phrase, so that a machine WITH a GPU can
// tell them apart from the skip message alone (tests/check_skips.sh --on-gpu, which
// tools/gpu-check.sh runs):
//
//   TESSERA_NEEDS_GPU_SKIP(reason)     the case needs a usable CUDA device and there is none.
//                                      Message: "GPU skip: needs a CUDA device: <reason>".
//                                      Allowed without a GPU; a failure on the GPU machine.
//   TESSERA_GPU_PRESENT_SKIP(reason)   the case checks the no-GPU path (a refusal, a fallback)
//                                      and a usable CUDA device is here, so there is nothing to
//                                      check. Message: "GPU skip: a CUDA device is usable:
//                                      <reason>". Allowed everywhere.
//
// Both are GPU skips (the message starts with kGpuSkipPrefix, tests/support/skips.h), which CI's
// check without a GPU accepts. A skip for any other reason (a dataset, a build without the
// emulator) must not use either phrase. `reason` is anything that streams into a GoogleTest
// message (a string literal or a std::string expression).
#include "tests/support/skips.h"

namespace tessera::test {

// What follows kGpuSkipPrefix in each kind's message (tests/check_skips.sh matches these).
inline constexpr const char* kNeedsGpuPhrase = "needs a CUDA device: ";
inline constexpr const char* kGpuPresentPhrase = "a CUDA device is usable: ";

}  // namespace tessera::test

#define TESSERA_NEEDS_GPU_SKIP(reason) \
  GTEST_SKIP() << ::tessera::test::kGpuSkipPrefix << ::tessera::test::kNeedsGpuPhrase << (reason)
#define TESSERA_GPU_PRESENT_SKIP(reason) \
  GTEST_SKIP() << ::tessera::test::kGpuSkipPrefix << ::tessera::test::kGpuPresentPhrase << (reason)
