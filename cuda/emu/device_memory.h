#pragma once
// Emulated device memory: host memory that the emulator knows about.
//   - Every allocation is exactly the size asked for (256-byte aligned, like cudaMalloc), so
//     AddressSanitizer reports a kernel's access one element past the end.
//   - Allocations are registered, so a launch can check that each raw-pointer kernel argument
//     is null or points into device memory (a host pointer on a GPU is an illegal address), and
//     the schedule check can snapshot and compare the memory a kernel may write.
//   - Without AddressSanitizer, every allocation has 256 guard bytes before and after it, filled
//     with a pattern; a launch checks the guards of the allocations it could reach, so a kernel's
//     out-of-bounds write is reported (naming the kernel and allocation) in every build. Under
//     AddressSanitizer there are no guards: the allocation is exact and ASan reports the access
//     itself (reads too), with the kernel's stack.
// The element kind only chooses how the schedule check compares: F32 with a float tolerance
// (atomicAdd order changes rounding), everything else bit for bit.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tessera::emu {

enum class ElementKind : uint8_t { Bytes = 0, F32 = 1, F64 = 2, I32 = 3, I64 = 4 };
const char* element_kind_name(ElementKind k);

struct DeviceAllocationInfo {
  const unsigned char* base = nullptr;
  size_t bytes = 0;
  ElementKind kind = ElementKind::Bytes;
  std::string label;  // for messages, e.g. "f32 [3, 5]"
  int device = 0;     // the emulated device it belongs to (cudaMalloc: the current device)
};

// Throws tessera::Error (Backend) when the host is out of memory.
void* device_alloc(size_t bytes, ElementKind kind, const std::string& label, int device = 0);
// Bytes allocated on `device` (cudaMemGetInfo).
size_t device_bytes_in_use(int device);
// Unregisters and frees; ignores nullptr; a pointer that is not an allocation's base is logged
// to stderr (never thrown: this runs in destructors).
void device_free(void* base) noexcept;

// The allocation whose range [base, base + bytes] holds p (one past the end counts: an empty
// view's data pointer may sit there).
std::optional<DeviceAllocationInfo> find_device_allocation(const void* p);
std::vector<DeviceAllocationInfo> all_device_allocations();
size_t device_allocation_count();

// Whether allocations carry guard bytes (false under AddressSanitizer).
bool device_guards_enabled();
// "" if the guard bytes around `a` are intact; otherwise says which were overwritten (offsets
// relative to the allocation's start and end) and restores them.
std::string check_and_repair_guards(const DeviceAllocationInfo& a);

// A window base: a pointer outside every allocation that a kernel only ever indexes back into
// `target`'s allocation (base + offset with a large offset). Tests use it to run kernels with
// 64-bit offsets beyond 2^31 on little real memory; while it lives, `window_base` passes the
// pointer-argument check and counts as pointing into target's allocation.
class DeviceWindow {
 public:
  DeviceWindow(const void* window_base, const void* target);
  ~DeviceWindow();
  DeviceWindow(const DeviceWindow&) = delete;
  DeviceWindow& operator=(const DeviceWindow&) = delete;

 private:
  const void* window_base_;
};

// Move-only owner of one typed allocation, for tests and the emulated backend.
template <typename T>
class DeviceArray {
 public:
  DeviceArray() = default;
  DeviceArray(size_t count, ElementKind kind, const std::string& label)
      : ptr_(static_cast<T*>(device_alloc(count * sizeof(T), kind, label))), count_(count) {}
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  DeviceArray(DeviceArray&& o) noexcept : ptr_(o.ptr_), count_(o.count_) {
    o.ptr_ = nullptr;
    o.count_ = 0;
  }
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    if (this != &o) {
      device_free(ptr_);
      ptr_ = o.ptr_;
      count_ = o.count_;
      o.ptr_ = nullptr;
      o.count_ = 0;
    }
    return *this;
  }
  ~DeviceArray() { device_free(ptr_); }
  T* data() const { return ptr_; }
  size_t size() const { return count_; }
  T& operator[](size_t i) const { return ptr_[i]; }

 private:
  T* ptr_ = nullptr;
  size_t count_ = 0;
};

}  // namespace tessera::emu
