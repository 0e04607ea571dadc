#pragma once
// What the CUB and Thrust stand-in headers (cuda/emu/include/cub/, thrust/) share: the rule
// checks that do not depend on element types, the temp-storage protocol and sizes, and the
// failure path of work that finds a broken rule when it runs. Implemented in cub.cpp.
#include <cstddef>
#include <string>

#include "cuda/emu/runtime_api.h"

namespace tessera::emu::cub_standin {

// What a CUB call does after the temp-storage protocol: a null d_temp_storage only answers the
// size (Query); too little storage fails (the call returns cudaErrorInvalidValue); else Run.
enum class TempStep { Query, Run, Fail };
TempStep temp_storage_protocol(const char* entry, void* d_temp_storage, size_t& temp_storage_bytes,
                               size_t required);

// The sizes the stand-in asks for (its own choice, shaped like CUB's: each internal buffer rounded
// to 256 bytes, plus 255 for aligning the base), never 0.
size_t radix_sort_temp_bytes(long long num_items, size_t key_bytes, size_t value_bytes, int bits);
size_t scan_temp_bytes(long long num_items);
size_t run_length_encode_temp_bytes(long long num_items);

// Rules on the call's arguments; each records its check and returns whether it held.
bool check_num_items(const char* entry, long long num_items);
bool check_bit_range(const char* entry, int begin_bit, int end_bit, int key_bits);
// [p, p + bytes) is device memory (one allocation) of the current device, or bytes == 0 (kernels
// run there; no peer access is enabled); `what` names the argument.
bool check_device_range(const char* entry, const char* what, const void* p, size_t bytes);
// The launch rule: `stream` exists and belongs to the current device (a launch to another
// device's stream fails: the call returns cudaErrorInvalidResourceHandle).
bool check_stream(const char* library, const char* entry, cudaStream_t stream);
// The two ranges do not overlap (empty ranges never do).
bool check_disjoint(const char* entry, const char* rule, const void* a, size_t a_bytes,
                    const void* b, size_t b_bytes);
// An in-place scan (d_in == d_out) or no overlap at all.
bool check_in_place_or_disjoint(const char* entry, const void* in, const void* out, size_t bytes);

// In the queued work, before it reads anything: the temp storage is still one device allocation
// of the size the call was given (it must outlive the work); then it is overwritten with a
// pattern, as the device algorithm would scribble on it. A broken rule throws tessera::Error.
void use_temp_storage(const char* entry, void* d_temp_storage, size_t temp_storage_bytes);
// In the queued work, before it reads anything: [p, p + bytes) is still device memory (an input
// or output released before the stream ran the work would be a use after free on the device).
void require_allocated(const char* entry, const char* what, const void* p, size_t bytes,
                       const char* library = "CUB");
// In the queued work: records the broken rule and throws tessera::Error naming it (surfaces at the
// stream's next synchronisation, as a device fault would).
[[noreturn]] void fail_in_work(const char* entry, const char* rule, const std::string& detail);

// Thrust reports a broken rule by throwing (tessera::Error, Backend) instead of a status.
void thrust_require(const char* entry, const char* rule, bool ok, const std::string& detail);
// check_stream for Thrust: throws when the rule is broken.
void thrust_check_stream(const char* entry, cudaStream_t stream);

}  // namespace tessera::emu::cub_standin
