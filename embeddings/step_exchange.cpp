#include "embeddings/step_exchange.h"

#include <climits>
#include <cstring>

#include "host/core/error.h"

namespace tessera::emb {
namespace {

constexpr uint32_t kMagic = 0x31585354u;  // "TSX1" in little-endian bytes
constexpr uint32_t kWeighted = 1u;

struct Header {
  uint32_t magic = kMagic, flags = 0;
  int64_t batch = 0, tables = 0, out_dim = 0, nnz = 0;
};

template <typename T>
void put(std::string& out, const T* p, int64_t n) {
  if (n > 0)  // an empty section may have no storage at all
    out.append(reinterpret_cast<const char*>(p), static_cast<size_t>(n) * sizeof(T));
}

// Reads one pack's sections in order, checking each fits.
class Reader {
 public:
  Reader(const std::string& s, size_t rank) : s_(s), rank_(rank) {}
  template <typename T>
  const char* take(int64_t n, const char* field) {
    const uint64_t bytes = static_cast<uint64_t>(n) * sizeof(T);
    if (n < 0 || bytes > s_.size() - at_)
      TESSERA_THROW(Internal, "sparse step pack of rank " << rank_ << " (" << s_.size()
                                                          << " bytes) is cut short in its " << field
                                                          << " at byte " << at_);
    const char* p = s_.data() + at_;
    at_ += static_cast<size_t>(bytes);
    return p;
  }
  void done() const {
    if (at_ != s_.size())
      TESSERA_THROW(Internal, "sparse step pack of rank " << rank_ << " has " << s_.size() - at_
                                                          << " bytes after its gradient");
  }

 private:
  const std::string& s_;
  size_t rank_;
  size_t at_ = 0;
};

// One rank's pack, parsed in place (pointers into the pack's bytes; memcpy'd out, unaligned).
struct Pack {
  Header h;
  const char *lengths = nullptr, *ids = nullptr, *weights = nullptr, *dout = nullptr;
};

Pack parse(const std::string& s, size_t rank, int64_t tables, int64_t out_dim) {
  Reader r(s, rank);
  Pack p;
  std::memcpy(&p.h, r.take<Header>(1, "header"), sizeof(Header));
  const Header& h = p.h;
  if (h.magic != kMagic || (h.flags & ~kWeighted) != 0)
    TESSERA_THROW(Internal, "sparse step pack of rank " << rank << " has magic " << h.magic
                                                        << " and flags " << h.flags);
  if (h.tables != tables || h.out_dim != out_dim || h.batch < 0 || h.nnz < 0)
    TESSERA_THROW(Internal, "sparse step pack of rank "
                                << rank << " is for " << h.tables << " tables of width "
                                << h.out_dim << " (batch " << h.batch << ", nnz " << h.nnz
                                << "); these tables are " << tables << " of width " << out_dim);
  p.lengths = r.take<int32_t>(h.tables * h.batch, "bag lengths");
  p.ids = r.take<int64_t>(h.nnz, "ids");
  if (h.flags & kWeighted) p.weights = r.take<float>(h.nnz, "weights");
  p.dout = r.take<float>(h.batch * h.out_dim, "gradient");
  r.done();
  int64_t sum = 0;
  for (int64_t i = 0; i < h.tables * h.batch; ++i) {
    int32_t len;
    std::memcpy(&len, p.lengths + i * sizeof len, sizeof len);
    if (len < 0)
      TESSERA_THROW(Internal,
                    "sparse step pack of rank " << rank << ": bag " << i << " has length " << len);
    sum += len;
  }
  if (sum != h.nnz)
    TESSERA_THROW(Internal, "sparse step pack of rank " << rank << ": bag lengths sum to " << sum
                                                        << ", nnz is " << h.nnz);
  return p;
}

}  // namespace

std::string pack_empty_step(int64_t tables, int64_t out_dim) {
  Header h;
  h.tables = tables;
  h.out_dim = out_dim;
  std::string out;
  put(out, &h, 1);
  return out;
}

std::string pack_step(const Bags& b, const Tensor& dout, float scale, int64_t tables,
                      int64_t out_dim) {
  TESSERA_CHECK(b.offsets.is_host() && b.indices.is_host() && dout.is_host() &&
                    b.offsets.numel() == tables * b.batch + 1 &&
                    dout.numel() == b.batch * out_dim && dout.dtype() == DType::F32,
                "pack_step: bags with offsets " << b.offsets.describe() << " and gradient "
                                                << dout.describe() << " for " << tables
                                                << " tables of width " << out_dim);
  const int64_t* off = b.offsets.data<int64_t>();
  Header h;
  h.flags = b.weights.defined() ? kWeighted : 0u;
  h.batch = b.batch;
  h.tables = tables;
  h.out_dim = out_dim;
  h.nnz = off[tables * b.batch] - off[0];
  std::vector<int32_t> lengths(static_cast<size_t>(tables * b.batch));
  for (size_t i = 0; i < lengths.size(); ++i) {
    const int64_t len = off[i + 1] - off[i];
    TESSERA_CHECK(len >= 0 && len <= INT32_MAX, "pack_step: bag " << i << " of length " << len);
    lengths[i] = static_cast<int32_t>(len);
  }
  std::vector<float> g(dout.data<float>(), dout.data<float>() + dout.numel());
  for (float& v : g) v *= scale;
  std::string out;
  out.reserve(sizeof h + lengths.size() * 4 + static_cast<size_t>(h.nnz) * 12 + g.size() * 4);
  put(out, &h, 1);
  put(out, lengths.data(), static_cast<int64_t>(lengths.size()));
  put(out, b.indices.data<int64_t>() + off[0], h.nnz);
  if (b.weights.defined()) put(out, b.weights.data<float>() + off[0], h.nnz);
  put(out, g.data(), static_cast<int64_t>(g.size()));
  return out;
}

GlobalStep concat_steps(const std::vector<std::string>& packs, int64_t tables, int64_t out_dim) {
  std::vector<Pack> ps;
  int64_t B = 0, nnz = 0;
  bool weighted = false, unweighted = false;
  for (size_t r = 0; r < packs.size(); ++r) {
    ps.push_back(parse(packs[r], r, tables, out_dim));
    B += ps.back().h.batch;
    nnz += ps.back().h.nnz;
    if (ps.back().h.batch > 0) (ps.back().weights ? weighted : unweighted) = true;
  }
  if (weighted && unweighted)
    TESSERA_THROW(Internal, "sparse step packs: some ranks' bags have per-id weights, others not");
  GlobalStep g;
  g.bags.batch = B;
  g.bags.offsets = Tensor::host({tables * B + 1}, DType::I64);
  g.bags.indices = Tensor::host({nnz}, DType::I64);
  if (weighted) g.bags.weights = Tensor::host({nnz});
  g.dout = Tensor::host({B, out_dim});
  int64_t* off = g.bags.offsets.data<int64_t>();
  off[0] = 0;
  int64_t bag = 0, at = 0;
  std::vector<int64_t> read(ps.size(), 0);  // ids of each pack used so far
  for (int64_t t = 0; t < tables; ++t)
    for (size_t r = 0; r < ps.size(); ++r) {
      const Pack& p = ps[r];
      int64_t n = 0;
      for (int64_t s = 0; s < p.h.batch; ++s, ++bag) {
        int32_t len;
        std::memcpy(&len, p.lengths + (t * p.h.batch + s) * sizeof len, sizeof len);
        n += len;
        off[bag + 1] = off[bag] + len;
      }
      if (n == 0) continue;  // an empty part has no ids (and no weights section) to copy
      const size_t from = static_cast<size_t>(read[r]) * 8;
      std::memcpy(g.bags.indices.data<int64_t>() + at, p.ids + from, static_cast<size_t>(n) * 8);
      if (weighted)
        std::memcpy(g.bags.weights.data<float>() + at, p.weights + from / 2,
                    static_cast<size_t>(n) * 4);
      read[r] += n;
      at += n;
    }
  float* d = g.dout.data<float>();
  for (const Pack& p : ps) {
    const size_t n = static_cast<size_t>(p.h.batch * out_dim);
    if (n == 0) continue;
    std::memcpy(d, p.dout, n * sizeof(float));
    d += n;
  }
  return g;
}

}  // namespace tessera::emb
