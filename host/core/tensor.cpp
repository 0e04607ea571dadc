#include "host/core/tensor.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <sstream>

#include "host/core/checked_size.h"
#include "host/core/enum_table.h"

namespace tessera {

const char* error_kind_name(ErrorKind kind) {
  static constexpr const char* kNames[] = {"config error",  "data error",  "I/O error",
                                           "backend error", "shape error", "usage error",
                                           "internal error"};
  return enum_entry<ErrorKind::Internal>(kind, kNames, "error");
}

const char* error_kind_id(ErrorKind kind) {
  static constexpr const char* kIds[] = {"config", "data",  "io",      "backend",
                                         "shape",  "usage", "internal"};
  return enum_entry<ErrorKind::Internal>(kind, kIds, "internal");
}

size_t dtype_size(DType t) {
  static constexpr size_t kSizes[] = {4, 4, 8};  // f32, i32, i64
  return enum_entry<DType::I64>(t, kSizes, 0);
}

const char* dtype_name(DType t) {
  static constexpr const char* kNames[] = {"f32", "i32", "i64"};
  return enum_entry<DType::I64>(t, kNames, "?");
}

std::string Device::str() const {
  return kind == DeviceKind::Host ? std::string("cpu") : "cuda:" + std::to_string(index);
}

HostBuffer::HostBuffer(size_t bytes) : HostMemoryBuffer(bytes) {
  size_t rounded = (bytes + 63) / 64 * 64;
  if (rounded == 0) rounded = 64;
  ptr_ = std::aligned_alloc(64, rounded);
  if (!ptr_) TESSERA_THROW(Backend, "host allocation of " << bytes << " bytes failed");
  std::memset(ptr_, 0, rounded);
}
HostBuffer::HostBuffer(HostBuffer&& o) noexcept : HostMemoryBuffer(o.bytes_) {
  ptr_ = o.ptr_;
  o.ptr_ = nullptr;
  o.bytes_ = 0;
}
HostBuffer& HostBuffer::operator=(HostBuffer&& o) noexcept {
  if (this != &o) {
    std::free(ptr_);
    ptr_ = o.ptr_;
    bytes_ = o.bytes_;
    o.ptr_ = nullptr;
    o.bytes_ = 0;
  }
  return *this;
}
HostBuffer::~HostBuffer() {
  std::free(ptr_);
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::string shape_str(const Shape& s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << "]";
  return o.str();
}

Tensor::Tensor(std::shared_ptr<Buffer> buffer, Shape shape, DType dtype, size_t byte_offset)
    : buffer_(std::move(buffer)), shape_(std::move(shape)), dtype_(dtype), offset_(byte_offset) {
  for (int64_t d : shape_) TESSERA_CHECK(d >= 0, "negative dimension in " << shape_str(shape_));
  TESSERA_CHECK(offset_ + bytes() <= buffer_->bytes(),
                "tensor " << shape_str(shape_) << " exceeds its buffer");
}

Tensor Tensor::host(const Shape& shape, DType dtype) {
  // In checked arithmetic: a product that wrapped round would allocate a small buffer for a
  // tensor claiming far more elements.
  const std::optional<uint64_t> n = checked_product(shape);
  const std::optional<uint64_t> bytes = n ? checked_mul(*n, dtype_size(dtype)) : std::nullopt;
  TESSERA_CHECK(bytes, "host tensor " << shape_str(shape) << " of " << dtype_name(dtype)
                                      << ": a negative dimension or a size beyond 2^63");
  return Tensor(std::make_shared<HostBuffer>(static_cast<size_t>(*bytes)), shape, dtype);
}

int64_t Tensor::numel() const {
  return shape_numel(shape_);
}
Device Tensor::device() const {
  return buffer_ ? buffer_->device() : Device{};
}

void* Tensor::raw() const {
  TESSERA_CHECK(buffer_ != nullptr, "use of an undefined tensor");
  return static_cast<char*>(buffer_->data()) + offset_;
}

Tensor Tensor::reshape(const Shape& shape) const {
  TESSERA_CHECK(shape_numel(shape) == numel(),
                "reshape " << shape_str(shape_) << " -> " << shape_str(shape));
  return Tensor(buffer_, shape, dtype_, offset_);
}

Tensor Tensor::rows(int64_t begin, int64_t end) const {
  TESSERA_CHECK(rank() >= 1 && begin >= 0 && begin <= end && end <= shape_[0],
                "rows [" << begin << ", " << end << ") of " << shape_str(shape_));
  int64_t row_elems = shape_[0] == 0 ? 0 : numel() / shape_[0];
  Shape s = shape_;
  s[0] = end - begin;
  return Tensor(buffer_, s, dtype_, offset_ + begin * row_elems * dtype_size(dtype_));
}

std::string Tensor::describe() const {
  return std::string(dtype_name(dtype_)) + shape_str(shape_) + "@" + device().str();
}

}  // namespace tessera
