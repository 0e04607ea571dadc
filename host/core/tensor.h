#pragma once
// Tensor: a shape, a dtype and a device over a shared, move-only buffer.
//   - Buffers own memory (host: 64-byte aligned; CUDA: cudaMalloc) and are never copied
//     implicitly; Tensors share a buffer and may be row-slice views of it.
//   - Row-major, contiguous. shape[0] is the batch / row dimension.
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "host/core/error.h"

namespace tessera {

enum class DType : uint8_t { F32 = 0, I32 = 1, I64 = 2 };
size_t dtype_size(DType t);
const char* dtype_name(DType t);
template <typename T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::F32;
}
template <>
constexpr DType dtype_of<int32_t>() {
  return DType::I32;
}
template <>
constexpr DType dtype_of<int64_t>() {
  return DType::I64;
}

enum class DeviceKind : uint8_t { Host = 0, Cuda = 1 };
struct Device {
  DeviceKind kind = DeviceKind::Host;
  int index = 0;
  bool operator==(const Device& o) const { return kind == o.kind && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string str() const;
};

// Owns one allocation. Move-only; destructors never throw (they log on failure).
class Buffer {
 public:
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  virtual ~Buffer() = default;
  virtual void* data() = 0;
  virtual size_t bytes() const = 0;
  virtual Device device() const = 0;
};

// A Buffer in host memory (a host-device one): the pointer and size every host allocation has;
// the subclass allocates ptr_ and frees it in its destructor.
class HostMemoryBuffer : public Buffer {
 public:
  void* data() override { return ptr_; }
  size_t bytes() const override { return bytes_; }
  Device device() const override { return Device{}; }

 protected:
  explicit HostMemoryBuffer(size_t bytes) : bytes_(bytes) {}
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// 64-byte aligned, zero-filled host memory (std::aligned_alloc).
class HostBuffer final : public HostMemoryBuffer {
 public:
  explicit HostBuffer(size_t bytes);
  HostBuffer(HostBuffer&& o) noexcept;
  HostBuffer& operator=(HostBuffer&& o) noexcept;
  ~HostBuffer() override;
};

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);

class Tensor {
 public:
  Tensor() = default;
  Tensor(std::shared_ptr<Buffer> buffer, Shape shape, DType dtype, size_t byte_offset = 0);

  // A new, zero-filled host tensor.
  static Tensor host(const Shape& shape, DType dtype = DType::F32);
  template <typename T>
  static Tensor host_from(const Shape& shape, const std::vector<T>& values);

  bool defined() const { return buffer_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int64_t dim(int i) const { return shape_.at(i < 0 ? shape_.size() + i : i); }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t numel() const;
  DType dtype() const { return dtype_; }
  Device device() const;
  bool is_host() const { return device().kind == DeviceKind::Host; }
  size_t bytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }

  void* raw() const;
  template <typename T>
  T* data() const {
    TESSERA_CHECK(dtype_of<T>() == dtype_,
                  "tensor of " << dtype_name(dtype_) << " read as " << dtype_name(dtype_of<T>()));
    return static_cast<T*>(raw());
  }

  // Views sharing the buffer.
  Tensor reshape(const Shape& shape) const;
  Tensor rows(int64_t begin, int64_t end) const;  // rows [begin, end) of dimension 0

  std::string describe() const;

 private:
  std::shared_ptr<Buffer> buffer_;
  Shape shape_;
  DType dtype_ = DType::F32;
  size_t offset_ = 0;
};

int64_t shape_numel(const Shape& s);

template <typename T>
Tensor Tensor::host_from(const Shape& shape, const std::vector<T>& values) {
  Tensor t = host(shape, dtype_of<T>());
  TESSERA_CHECK(static_cast<int64_t>(values.size()) == t.numel(),
                "host_from: " << values.size() << " values for shape " << shape_str(shape));
  T* p = t.data<T>();
  for (size_t i = 0; i < values.size(); ++i) p[i] = values[i];
  return t;
}

}  // namespace tessera
