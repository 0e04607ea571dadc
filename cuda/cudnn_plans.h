#pragma once
// The CUDA-free parts of the cuDNN plan caches (cuda/cudnn_lstm.cpp, cuda/cudnn_conv.cpp): what a
// plan is keyed by, the bounded cache that holds plans, and cuDNN's pointer-alignment rule. Plain
// C++ so that the normal build unit-tests them (tests/cudnn_plans_test.cpp).
//   - LSTM: what depends only on the layer (RNN descriptor, weight space, its gradient, the
//     weight block table) is keyed by the config; what depends on the batch shape (data
//     descriptors, temp sizes, sequence lengths) by (T, B) inside it. Variable-length text then
//     makes new shape entries only, never new weight spaces.
//   - Convolution: the algorithms cudnnFind* measured are keyed by the layer's shape without N
//     and reused for every batch size (the last partial batch too); descriptors and workspace
//     sizes are keyed by the full shape.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>

#include "host/backend/backend.h"

namespace tessera::cuda {

// cuDNN's data pointers must be aligned to 16 bytes (the byte alignment its tensors are created
// with when the legacy API lowers a call; cudaMalloc gives 256). Views into a buffer at other
// offsets go through an aligned scratch copy (CudnnOps).
constexpr uintptr_t kCudnnAlignment = 16;
inline bool cudnn_aligned(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % kCudnnAlignment == 0;
}

// At most `capacity` entries; when a new key would exceed it, the cache is emptied first (a
// workload with ever-changing shapes re-plans rather than growing without bound). References stay
// valid until the next get() of a key that is not present.
template <typename Key, typename Value>
class BoundedCache {
 public:
  explicit BoundedCache(size_t capacity) : capacity_(capacity) {}

  // The entry for `key`, made by make() (returning std::unique_ptr<Value>) when absent.
  template <typename Make>
  Value& get(const Key& key, Make&& make) {
    auto it = entries_.find(key);
    if (it != entries_.end()) return *it->second;
    std::unique_ptr<Value> v = make();
    if (entries_.size() >= capacity_) entries_.clear();
    ++built_;
    return *entries_.emplace(key, std::move(v)).first->second;
  }
  const Value* find(const Key& key) const {
    auto it = entries_.find(key);
    return it == entries_.end() ? nullptr : it->second.get();
  }
  size_t size() const { return entries_.size(); }
  size_t built() const { return built_; }  // entries made since construction

 private:
  size_t capacity_;
  size_t built_ = 0;
  std::map<Key, std::unique_ptr<Value>> entries_;
};

// The LSTM layer's key: everything cudnnSetRNNDescriptor_v8 and the weight space depend on.
using LstmConfigKey = std::tuple<int64_t, int64_t, int64_t, int, float>;
inline LstmConfigKey lstm_config_key(const LstmConfig& c) {
  return {c.input_size, c.hidden_size, c.num_layers, c.dirs(), c.dropout};
}
// The batch shape's key inside a layer: x is [T, B, I].
using LstmShapeKey = std::pair<int64_t, int64_t>;
inline LstmShapeKey lstm_shape_key(int64_t t, int64_t b) {
  return {t, b};
}

// A convolution layer's key without the batch size: x [N, C, H, W] and w with N left out.
inline std::string conv_layer_key(const Conv2dParams& p, const Shape& x, const Shape& w) {
  std::ostringstream k;
  k << "[*";
  for (size_t i = 1; i < x.size(); ++i) k << ", " << x[i];
  k << "]" << shape_str(w) << " s" << p.stride_h << "," << p.stride_w << " p" << p.pad_h << ","
    << p.pad_w << " d" << p.dilation_h << "," << p.dilation_w << " g" << p.groups;
  return k.str();
}
// The full key: the layer's and N.
inline std::string conv_shape_key(const Conv2dParams& p, const Shape& x, const Shape& w) {
  return conv_layer_key(p, x, w) + " N" + std::to_string(x.empty() ? 0 : x[0]);
}

}  // namespace tessera::cuda
