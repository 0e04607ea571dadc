#include "host/dist/process_group.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "host/backend/backend.h"
#include "host/core/error.h"

namespace tessera::dist {

void ProcessGroup::allreduce_sum(Backend& be, const std::vector<Tensor*>& tensors) {
  for (Tensor* t : tensors) {
    if (!t || !t->defined() || t->dtype() != DType::F32)
      TESSERA_THROW(Internal, "allreduce_sum over tensors takes defined f32 tensors");
    if (t->is_host()) {
      allreduce_sum(t->data<float>(), t->numel());
      continue;
    }
    Tensor h = be.to_host(*t);
    allreduce_sum(h.data<float>(), h.numel());
    be.copy(h, *t);
  }
}

namespace {

class LocalGroup final : public ProcessGroup {
 public:
  int rank() const override { return 0; }
  int world() const override { return 1; }
  void allreduce_sum(float*, int64_t) override {}
  void allreduce_sum(double*, int64_t) override {}
  void broadcast(void*, int64_t, int) override {}
  void barrier() override {}
  void allgather(const void* send, int64_t bytes, void* recv) override {
    if (bytes > 0) std::memcpy(recv, send, static_cast<size_t>(bytes));
  }
  bool deterministic() const override { return true; }
  std::vector<std::string> alltoallv(const std::vector<std::string>& send) override {
    if (send.size() != 1)
      TESSERA_THROW(Internal, "alltoallv of " << send.size() << " parts in a group of 1");
    return send;
  }
};

std::unique_ptr<ProcessGroup>& installed() {
  static std::unique_ptr<ProcessGroup> group = make_local_group();
  return group;
}

}  // namespace

std::unique_ptr<ProcessGroup> make_local_group() {
  return std::make_unique<LocalGroup>();
}

ProcessGroup& process_group() {
  return *installed();
}

void set_process_group(std::unique_ptr<ProcessGroup> group) {
  installed() = group ? std::move(group) : make_local_group();
}

void broadcast_string(ProcessGroup& g, std::string& s, int root) {
  if (g.world() == 1) return;
  int64_t n = static_cast<int64_t>(s.size());
  g.broadcast(&n, sizeof n, root);
  s.resize(static_cast<size_t>(n));
  if (n > 0) g.broadcast(s.data(), n, root);
}

std::vector<std::string> ProcessGroup::allgatherv(const std::string& s) {
  const int world = this->world();
  const int64_t mine = static_cast<int64_t>(s.size());
  std::vector<int64_t> sizes(static_cast<size_t>(world));
  allgather(&mine, sizeof mine, sizes.data());
  int64_t longest = 0;
  for (int64_t n : sizes) longest = std::max(longest, n);
  std::string padded = s;
  padded.resize(static_cast<size_t>(longest));
  std::string all(static_cast<size_t>(longest * world), '\0');
  if (longest > 0) allgather(padded.data(), longest, all.data());
  std::vector<std::string> out;
  for (int r = 0; r < world; ++r)
    out.push_back(all.substr(static_cast<size_t>(r * longest), static_cast<size_t>(sizes[r])));
  return out;
}

// Every rank's parts framed as [i64 length, bytes] x world, all-gathered; rank r keeps part
// `rank()` of each.
std::vector<std::string> ProcessGroup::alltoallv(const std::vector<std::string>& send) {
  const int world = this->world(), me = rank();
  if (static_cast<int>(send.size()) != world)
    TESSERA_THROW(Internal, "alltoallv of " << send.size() << " parts over " << world << " ranks");
  std::string framed;
  for (const std::string& part : send) {
    const int64_t n = static_cast<int64_t>(part.size());
    framed.append(reinterpret_cast<const char*>(&n), sizeof n);
    framed += part;
  }
  std::vector<std::string> out;
  for (const std::string& all : allgatherv(framed)) {
    size_t at = 0;
    for (int j = 0;; ++j) {
      int64_t n = 0;
      if (at + sizeof n > all.size()) TESSERA_THROW(Internal, "alltoallv: a framed part is cut");
      std::memcpy(&n, all.data() + at, sizeof n);
      at += sizeof n;
      if (n < 0 || static_cast<uint64_t>(n) > all.size() - at)
        TESSERA_THROW(Internal, "alltoallv: a framed part is cut");
      if (j == me) {
        out.push_back(all.substr(at, static_cast<size_t>(n)));
        break;
      }
      at += static_cast<size_t>(n);
    }
  }
  return out;
}

std::vector<std::string> allgather_strings(ProcessGroup& g, const std::string& s) {
  return g.allgatherv(s);
}

}  // namespace tessera::dist
