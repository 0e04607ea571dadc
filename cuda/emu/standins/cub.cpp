// The type-independent half of the CUB/Thrust stand-ins (cub_standin.h); the templates in
// cuda/emu/include/cub/ and thrust/ call these for their rules and the temp-storage protocol.
#include "cuda/emu/standins/cub_standin.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <sstream>

#include "cuda/emu/device_memory.h"
#include "cuda/emu/standin.h"
#include "cuda/emu/stream_model.h"
#include "host/core/error.h"

namespace tessera::emu::cub_standin {

namespace {

constexpr const char* kLib = "CUB";
constexpr size_t kAlign = 256;

size_t round_up(size_t bytes) {
  return (bytes + kAlign - 1) / kAlign * kAlign;
}

// Tile state of a decoupled look-back pass: 16 bytes per tile of 1024 items, plus a warp's worth.
size_t tile_state_bytes(long long num_items) {
  const size_t tiles = static_cast<size_t>(std::max(0LL, num_items) + 1023) / 1024;
  return round_up((tiles + 32) * 16);
}

bool ranges_overlap(const void* a, size_t a_bytes, const void* b, size_t b_bytes) {
  if (a_bytes == 0 || b_bytes == 0) return false;
  const auto pa = reinterpret_cast<uintptr_t>(a), pb = reinterpret_cast<uintptr_t>(b);
  return pa < pb + b_bytes && pb < pa + a_bytes;
}

}  // namespace

TempStep temp_storage_protocol(const char* entry, void* d_temp_storage, size_t& temp_storage_bytes,
                               size_t required) {
  if (!d_temp_storage) {
    temp_storage_bytes = required;
    return TempStep::Query;
  }
  std::ostringstream d;
  d << "temp_storage_bytes " << temp_storage_bytes << ", required " << required;
  if (!check_rule(kLib, entry, "temp_storage_bytes >= the size a null d_temp_storage call returns",
                  temp_storage_bytes >= required, d.str()))
    return TempStep::Fail;
  if (!check_device_range(entry, "d_temp_storage", d_temp_storage, temp_storage_bytes))
    return TempStep::Fail;
  return TempStep::Run;
}

size_t radix_sort_temp_bytes(long long num_items, size_t key_bytes, size_t value_bytes, int bits) {
  const size_t n = static_cast<size_t>(std::max(0LL, num_items));
  const size_t passes = static_cast<size_t>(std::max(1, (bits + 7) / 8));
  // Alternate key and value buffers, one 256-bin 64-bit histogram per 8-bit pass.
  return round_up(n * key_bytes) + round_up(n * value_bytes) + round_up(passes * 256 * 8) + kAlign -
         1;
}

size_t scan_temp_bytes(long long num_items) {
  return tile_state_bytes(num_items) + kAlign - 1;
}

size_t run_length_encode_temp_bytes(long long num_items) {
  return tile_state_bytes(num_items) + kAlign - 1;
}

bool check_num_items(const char* entry, long long num_items) {
  return check_rule(kLib, entry, "num_items >= 0", num_items >= 0,
                    "num_items " + std::to_string(num_items));
}

bool check_bit_range(const char* entry, int begin_bit, int end_bit, int key_bits) {
  std::ostringstream d;
  d << "begin_bit " << begin_bit << ", end_bit " << end_bit << ", key bits " << key_bits;
  return check_rule(kLib, entry, "0 <= begin_bit <= end_bit <= 8 * sizeof(KeyT)",
                    0 <= begin_bit && begin_bit <= end_bit && end_bit <= key_bits, d.str());
}

bool check_device_range(const char* entry, const char* what, const void* p, size_t bytes) {
  if (bytes == 0) return true;  // nothing referenced
  const bool ok = is_device_range(p, bytes);
  std::ostringstream d;
  if (!ok) d << what << " " << p << ", " << bytes << " bytes";
  if (!check_rule(kLib, entry,
                  "inputs, outputs and temp storage are device memory of sufficient size", ok,
                  d.str()))
    return false;
  const auto a = find_device_allocation(p);
  const int current = detail::current_device();
  const bool here = !a || a->device == current;  // !a: an empty range at a null pointer
  std::ostringstream dd;
  if (!here) dd << what << " is on device " << a->device << ", device " << current << " is current";
  return check_rule(kLib, entry,
                    "inputs, outputs and temp storage are memory of the current device", here,
                    dd.str());
}

bool check_stream(const char* library, const char* entry, cudaStream_t stream) {
  const int stream_device = detail::stream_device(stream), current = detail::current_device();
  std::ostringstream d;
  if (stream_device != current)
    d << detail::stream_label(stream) << " while device " << current << " is current";
  return check_rule(library, entry, "the stream exists and belongs to the current device",
                    stream_device == current, d.str());
}

bool check_disjoint(const char* entry, const char* rule, const void* a, size_t a_bytes,
                    const void* b, size_t b_bytes) {
  const bool ok = !ranges_overlap(a, a_bytes, b, b_bytes);
  std::ostringstream d;
  if (!ok) d << a << " (" << a_bytes << " bytes) and " << b << " (" << b_bytes << " bytes)";
  return check_rule(kLib, entry, rule, ok, d.str());
}

bool check_in_place_or_disjoint(const char* entry, const void* in, const void* out, size_t bytes) {
  const bool ok = in == out || !ranges_overlap(in, bytes, out, bytes);
  std::ostringstream d;
  if (!ok) d << "d_in " << in << ", d_out " << out << ", " << bytes << " bytes each";
  return check_rule(kLib, entry, "d_in == d_out (in place) or the ranges do not overlap", ok,
                    d.str());
}

void use_temp_storage(const char* entry, void* d_temp_storage, size_t temp_storage_bytes) {
  if (!is_device_range(d_temp_storage, temp_storage_bytes)) {
    std::ostringstream d;
    d << "d_temp_storage " << d_temp_storage << ", " << temp_storage_bytes << " bytes";
    fail_in_work(entry, "temp storage stays allocated until the queued work has run", d.str());
  }
  check_rule(kLib, entry, "temp storage stays allocated until the queued work has run", true);
  std::memset(d_temp_storage, 0xA5, temp_storage_bytes);
}

void require_allocated(const char* entry, const char* what, const void* p, size_t bytes,
                       const char* library) {
  const char* rule = "inputs and outputs stay allocated until the queued work has run";
  if (bytes == 0) return;
  if (!is_device_range(p, bytes)) {
    std::ostringstream d;
    d << what << " " << p << ", " << bytes << " bytes";
    check_rule(library, entry, rule, false, d.str());
    TESSERA_THROW(Backend, entry << " (" << library << " stand-in, queued work): " << rule << " ("
                                 << d.str() << ")");
  }
  check_rule(library, entry, rule, true);
}

void fail_in_work(const char* entry, const char* rule, const std::string& detail) {
  check_rule(kLib, entry, rule, false, detail);
  TESSERA_THROW(Backend,
                entry << " (CUB stand-in, queued work): " << rule << " (" << detail << ")");
}

void thrust_check_stream(const char* entry, cudaStream_t stream) {
  if (check_stream("Thrust", entry, stream)) return;
  TESSERA_THROW(Backend, entry << " (Thrust stand-in): " << last_rule_failure()
                               << " (cudaErrorInvalidResourceHandle)");
}

void thrust_require(const char* entry, const char* rule, bool ok, const std::string& detail) {
  if (check_rule("Thrust", entry, rule, ok, detail)) return;
  TESSERA_THROW(Backend, entry << " (Thrust stand-in): " << rule << " (" << detail << ")");
}

}  // namespace tessera::emu::cub_standin
