// The device path of ShardedEmbeddingCollection (sharding.h: forward_device,
// backward_and_update_device): the shards' pooled rows and their gradients move between the
// shards' devices and the model's with device-to-device copies queued on the streams, and are
// combined and split on the model's device by Backend ops, so a training step reads nothing back.
//
// Combine and split work on column chunks of width g, the greatest common divisor of every column
// boundary of the parts (in the model's out layout and in the shards'): viewed as rows of g
// floats, out [B, out_dim] is [B * out_dim / g, g] and shard k's pooled rows [B, sdim] are
// [B * sdim / g, g], and chunk i of shard k lands in chunk map_k[i] of out. Forward zeroes out
// and scatter-adds every shard's chunks into it (Backend::embedding_backward: row-wise parts of
// a table add up, in shard order on the emulator, in any order on a GPU: 0 + a + b is exact for
// two parts); backward gathers each shard's chunks of dout (Backend::embedding_forward).
#include <numeric>

#include "embeddings/sharding.h"

namespace tessera::emb {

struct ShardedEmbeddingCollection::Exchange {
  Backend* model = nullptr;
  int64_t batch = -1;
  int64_t chunk = 1;  // g
  // Per shard (undefined for a shard not made):
  std::vector<Tensor> map;         // i64 [B * sdim / g] on the model: out chunk of each chunk
  std::vector<Tensor> on_model;    // f32 [B * sdim / g, g] on the model: pooled rows, then dout
  std::vector<Tensor> on_shard;    // f32 [B, sdim] on the shard: pooled rows
  std::vector<Tensor> dout_shard;  // f32 [B, sdim] on the shard: dout
};

bool ShardedEmbeddingCollection::stays_on_device(const Backend& model) const {
  if (model.device().kind != DeviceKind::Cuda) return false;
  for (const auto& sh : shards_) {
    if (!sh) continue;
    const Backend* b = sh->local_backend();
    if (!b || b->device().kind != DeviceKind::Cuda) return false;
  }
  return true;
}

ShardedEmbeddingCollection::Exchange& ShardedEmbeddingCollection::exchange(Backend& model,
                                                                           int64_t batch) {
  if (exchange_ && exchange_->model == &model && exchange_->batch == batch) return *exchange_;
  if (exchange_) {
    // The old buffers go back to caches ordered by their own backend's stream, but the other
    // side's stream may still read them: make each side wait for the other first.
    for (const auto& sh : shards_) {
      if (!sh) continue;
      order_after(*sh->local_backend(), *exchange_->model);
      order_after(*exchange_->model, *sh->local_backend());
    }
    exchange_.reset();
  }
  auto ex = std::make_shared<Exchange>();
  ex->model = &model;
  ex->batch = batch;
  const int64_t od = layout_.out_dim();
  int64_t g = od;
  for (int64_t t = 0; t < layout_.num_tables(); ++t)
    for (const PartRef& p : parts_[static_cast<size_t>(t)]) {
      const TableLayout& sl = shards_[static_cast<size_t>(p.shard)]->layout();
      for (int64_t v : {layout_.out_offset(t) + p.col_begin, p.col_end - p.col_begin,
                        sl.out_offset(p.local_table), sl.out_dim()})
        g = std::gcd(g, v);
    }
  ex->chunk = g;
  const size_t n = shards_.size();
  ex->map.resize(n);
  ex->on_model.resize(n);
  ex->on_shard.resize(n);
  ex->dout_shard.resize(n);
  for (size_t k = 0; k < n; ++k) {
    if (!shards_[k]) continue;
    const TableLayout& sl = shards_[k]->layout();
    const int64_t sdim = sl.out_dim();
    Tensor map = Tensor::host({batch * sdim / g}, DType::I64);
    int64_t* m = map.data<int64_t>();
    for (int64_t t = 0; t < layout_.num_tables(); ++t)
      for (const PartRef& p : parts_[static_cast<size_t>(t)]) {
        if (static_cast<size_t>(p.shard) != k) continue;
        const int64_t from = sl.out_offset(p.local_table) / g;
        const int64_t to = (layout_.out_offset(t) + p.col_begin) / g;
        const int64_t chunks = (p.col_end - p.col_begin) / g;
        for (int64_t s = 0; s < batch; ++s)
          for (int64_t c = 0; c < chunks; ++c) m[s * sdim / g + from + c] = s * od / g + to + c;
      }
    Backend& sb = *shards_[k]->local_backend();
    ex->map[k] = model.to_device(map);
    ex->on_model[k] = model.empty({batch * sdim / g, g});
    ex->on_shard[k] = sb.empty({batch, sdim});
    ex->dout_shard[k] = sb.empty({batch, sdim});
  }
  exchange_ = std::move(ex);
  return *exchange_;
}

void ShardedEmbeddingCollection::forward_device(Backend& model, const Bags& host_bags,
                                                Tensor& out) {
  TESSERA_CHECK(stays_on_device(model), "the sharded device path needs CUDA shards and model");
  const int64_t B = host_bags.batch;
  const int64_t od = layout_.out_dim();
  TESSERA_CHECK(
      out.device() == model.device() && out.dtype() == DType::F32 && out.numel() == B * od,
      "pooled output must be f32 [" << B << ", " << od << "] on " << model.device().str()
                                    << ", got " << out.describe());
  const std::vector<Bags> routed = route(host_bags);
  Exchange& ex = exchange(model, B);
  const int64_t g = ex.chunk;
  Tensor out_chunks = out.reshape({B * od / g, g});
  model.fill(out_chunks, 0.f);
  for (size_t k = 0; k < shards_.size(); ++k) {
    if (!shards_[k]) continue;
    Backend& sb = *shards_[k]->local_backend();
    // The shard's buffers are read by the model's stream since the last step: wait for it.
    order_after(sb, model);
    shards_[k]->forward_device(routed[k], ex.on_shard[k]);
    order_after(model, sb);
    model.copy(ex.on_shard[k].reshape(ex.on_model[k].shape()), ex.on_model[k]);
    model.embedding_backward(ex.map[k], ex.on_model[k], out_chunks);  // scatter-add
  }
}

void ShardedEmbeddingCollection::backward_and_update_device(Backend& model, const Tensor& dout) {
  TESSERA_CHECK(batch_ >= 0, "sharded embedding backward before any forward");
  const int64_t B = batch_;
  const int64_t od = layout_.out_dim();
  TESSERA_CHECK(
      dout.device() == model.device() && dout.dtype() == DType::F32 && dout.numel() == B * od,
      "dout must be f32 [" << B << ", " << od << "] on " << model.device().str() << ", got "
                           << dout.describe());
  Exchange& ex = exchange(model, B);
  const Tensor dout_chunks = dout.reshape({B * od / ex.chunk, ex.chunk});
  for (size_t k = 0; k < shards_.size(); ++k) {
    if (!shards_[k]) continue;
    Backend& sb = *shards_[k]->local_backend();
    model.embedding_forward(dout_chunks, ex.map[k], ex.on_model[k]);  // gather
    order_after(sb, model);
    sb.copy(ex.on_model[k].reshape(ex.dout_shard[k].shape()), ex.dout_shard[k]);
    shards_[k]->backward_update_device(ex.dout_shard[k]);
  }
  ++step_;
}

}  // namespace tessera::emb
