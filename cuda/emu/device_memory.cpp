#include "cuda/emu/device_memory.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <sstream>

#include "host/core/error.h"

namespace tessera::emu {

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr size_t kGuardBytes = 0;
#else
constexpr size_t kGuardBytes = 256;  // before and after; keeps the 256-byte alignment
#endif
constexpr unsigned char kGuardByte = 0xA5;

struct Registry {
  std::mutex mutex;
  std::map<uintptr_t, DeviceAllocationInfo> by_base;
  std::map<uintptr_t, uintptr_t> windows;  // window base -> an address inside an allocation
};

// With r.mutex held.
const DeviceAllocationInfo* find_locked(Registry& r, uintptr_t a) {
  auto w = r.windows.find(a);
  if (w != r.windows.end()) a = w->second;
  auto it = r.by_base.upper_bound(a);
  if (it == r.by_base.begin()) return nullptr;
  --it;
  return a - it->first <= it->second.bytes ? &it->second : nullptr;
}

Registry& registry() {
  // Leaked on purpose: device memory may be freed by static destructors of other objects.
  static Registry* r = new Registry();
  return *r;
}

}  // namespace

const char* element_kind_name(ElementKind k) {
  switch (k) {
    case ElementKind::F32:
      return "f32";
    case ElementKind::F64:
      return "f64";
    case ElementKind::I32:
      return "i32";
    case ElementKind::I64:
      return "i64";
    default:
      return "bytes";
  }
}

bool device_guards_enabled() {
  return kGuardBytes > 0;
}

void* device_alloc(size_t bytes, ElementKind kind, const std::string& label, int device) {
  void* raw = nullptr;
  // posix_memalign takes any size (aligned_alloc wants a multiple of the alignment), so under
  // AddressSanitizer the allocation ends exactly where the data ends.
  const size_t total = bytes + 2 * kGuardBytes;
  if (posix_memalign(&raw, 256, total == 0 ? 1 : total) != 0 || raw == nullptr)
    TESSERA_THROW(Backend, "emulated cudaMalloc of " << bytes << " bytes for " << label
                                                     << ": out of host memory");
  if (kGuardBytes) std::memset(raw, kGuardByte, total);
  void* p = static_cast<unsigned char*>(raw) + kGuardBytes;
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.by_base[reinterpret_cast<uintptr_t>(p)] =
      DeviceAllocationInfo{static_cast<const unsigned char*>(p), bytes, kind, label, device};
  return p;
}

void device_free(void* base) noexcept {
  if (!base) return;
  Registry& r = registry();
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    auto it = r.by_base.find(reinterpret_cast<uintptr_t>(base));
    if (it == r.by_base.end()) {
      std::fprintf(
          stderr,
          "tessera: CUDA emulator: device_free(%p) of memory it did not allocate (ignored)\n",
          base);
      return;
    }
    r.by_base.erase(it);
  }
  std::free(static_cast<unsigned char*>(base) - kGuardBytes);
}

std::string check_and_repair_guards(const DeviceAllocationInfo& a) {
  if (!kGuardBytes) return "";
  auto* front = const_cast<unsigned char*>(a.base) - kGuardBytes;
  auto* back = const_cast<unsigned char*>(a.base) + a.bytes;
  long first_before = 0, first_after = -1;  // bytes before the start / after the end
  for (size_t i = 0; i < kGuardBytes; ++i)
    if (front[i] != kGuardByte) {
      first_before = static_cast<long>(kGuardBytes - i);  // the farthest one first
      break;
    }
  for (size_t i = 0; i < kGuardBytes; ++i)
    if (back[i] != kGuardByte) {
      first_after = static_cast<long>(i);
      break;
    }
  if (first_before == 0 && first_after < 0) return "";
  std::ostringstream msg;
  msg << "out-of-bounds write to allocation '" << a.label << "' (" << a.bytes << " bytes): ";
  if (first_before > 0)
    msg << "a guard byte " << first_before << " bytes before its start was changed";
  if (first_before > 0 && first_after >= 0) msg << ", and ";
  if (first_after >= 0)
    msg << "the guard byte at offset " << a.bytes + static_cast<size_t>(first_after) << " ("
        << first_after << " bytes past its end) was changed";
  std::memset(front, kGuardByte, kGuardBytes);
  std::memset(back, kGuardByte, kGuardBytes);
  return msg.str();
}

std::optional<DeviceAllocationInfo> find_device_allocation(const void* p) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  const DeviceAllocationInfo* info = find_locked(r, reinterpret_cast<uintptr_t>(p));
  if (info) return *info;
  return std::nullopt;
}

DeviceWindow::DeviceWindow(const void* window_base, const void* target)
    : window_base_(window_base) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (!find_locked(r, reinterpret_cast<uintptr_t>(target)))
    TESSERA_THROW(Usage, "DeviceWindow: target " << target << " is not emulated device memory");
  r.windows[reinterpret_cast<uintptr_t>(window_base)] = reinterpret_cast<uintptr_t>(target);
}

DeviceWindow::~DeviceWindow() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.windows.erase(reinterpret_cast<uintptr_t>(window_base_));
}

std::vector<DeviceAllocationInfo> all_device_allocations() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<DeviceAllocationInfo> out;
  out.reserve(r.by_base.size());
  for (const auto& kv : r.by_base) out.push_back(kv.second);
  return out;
}

size_t device_bytes_in_use(int device) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  size_t total = 0;
  for (const auto& kv : r.by_base)
    if (kv.second.device == device) total += kv.second.bytes;
  return total;
}

size_t device_allocation_count() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  return r.by_base.size();
}

}  // namespace tessera::emu
