// Fuzz target: the messages of embedding shards in other processes (embeddings/remote_shard.h),
// both ends of the wire as they read a frame another process sent:
//   - the server (ShardServer::handle, what an MPI shard rank runs on each request): create a
//     shard, then forward / backward / weight gradients / tables / optimizer state / steps /
//     close, each decoded from the bytes; with a 1 MiB memory limit for the tables a create
//     may ask for (a larger one is a legitimate request a real server would serve; kept small
//     so a run spends its time decoding, not zero-filling tables);
//   - the parent (make_remote_shard's proxy): every reply it reads comes from the input, for a
//     fixed session (create, forward, weight_grad, backward, tables, state, steps).
//
// Input: 1 option byte (bit 0: 0 server, 1 parent), then messages, each a little-endian u16
// length and that many bytes (the last one takes what is left when the length runs past it).
// Invariants checked: the server answers every request with a result or an error reply and
// never an error of kind Internal or Backend (an escaped std::exception or a failed allocation);
// the parent's results have the shape of the call (forward [B, out_dim], weight_grad [nnz],
// tables [rows, dim], state [state_size]), and its errors are input errors except those the far
// side reported (re-thrown with the kind its reply gives).
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "embeddings/collection.h"
#include "embeddings/remote_shard.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using namespace tessera;
using namespace tessera::emb;

std::deque<Message> split_messages(fuzz::ByteReader& in) {
  std::deque<Message> out;
  std::string_view rest = in.rest();
  while (!rest.empty()) {
    if (rest.size() < 2) break;
    const size_t n = static_cast<uint8_t>(rest[0]) | (size_t{static_cast<uint8_t>(rest[1])} << 8);
    rest.remove_prefix(2);
    const std::string_view body = rest.substr(0, n);
    out.emplace_back(body.begin(), body.end());
    rest.remove_prefix(body.size());
  }
  return out;
}

void fuzz_server(Backend& backend, std::deque<Message> requests) {
  ShardServer server(backend, int64_t{1} << 20);
  for (const Message& m : requests) {
    const Message reply = server.handle(m);
    fuzz::check(!reply.empty() && reply[0] <= 1, "a reply's status byte");
    if (reply[0] == 0) {
      fuzz::check(reply.size() >= 2, "an error reply without its kind");
      const auto kind = static_cast<ErrorKind>(reply[1]);
      if (kind == ErrorKind::Internal || kind == ErrorKind::Backend)
        fuzz::finding("the server answered with an error of kind " +
                      std::string(error_kind_name(kind)) + ": " +
                      std::string(reply.begin() + 2, reply.end()));
    }
  }
}

// Replies from the input, in order; requests are dropped.
class ScriptedChannel final : public ShardChannel {
 public:
  explicit ScriptedChannel(std::deque<Message> replies) : replies_(std::move(replies)) {}
  void send(Message) override {}
  Message receive() override {
    if (replies_.empty()) TESSERA_THROW(Io, "scripted channel: no more replies");
    Message m = std::move(replies_.front());
    replies_.pop_front();
    return m;
  }
  std::string where() const override { return "script"; }

 private:
  std::deque<Message> replies_;
};

// Runs one call of the parent's session. Errors the far side reported come back with the kind
// it gave (any kind: the reply says so, prefixed "shard on script: "); every other error must be
// an input error, as expect_input_errors checks.
template <typename Fn>
bool call(Fn&& fn) {
  return fuzz::expect_input_errors([&] {
    try {
      fn();
    } catch (const Error& e) {
      if (std::string(e.what()).rfind("shard on script: ", 0) == 0) return;
      throw;
    }
  });
}

void expect_f32(const Tensor& t, const Shape& shape, const char* call) {
  fuzz::check(t.defined() && t.dtype() == DType::F32 && t.shape() == shape,
              std::string(call) + " returned " + (t.defined() ? t.describe() : "nothing") +
                  ", not f32" + shape_str(shape));
}

void fuzz_parent(std::deque<Message> replies) {
  const std::vector<TableSpec> specs{{"a", 6, 2, Pooling::Sum}, {"b", 4, 3, Pooling::Mean}};
  CollectionOptions opts;
  opts.optimizer.kind = SparseOptimizer::LazyAdam;
  std::unique_ptr<EmbeddingShard> shard;
  const bool made = call([&] {
    shard = make_remote_shard(std::make_unique<ScriptedChannel>(std::move(replies)), specs, opts);
  });
  if (!made || !shard) return;  // refused (a far-side refusal leaves no shard)
  const Bags bags = make_host_bags({{{0, 5}, {}}, {{3}, {1, 2}}});  // B = 2, nnz = 5
  const TableLayout& layout = shard->layout();
  call([&] { expect_f32(shard->forward(bags), {2, layout.out_dim()}, "forward"); });
  call([&] {
    expect_f32(shard->weight_grad(Tensor::host({2, layout.out_dim()})), {5}, "weight_grad");
  });
  call([&] { shard->backward_update(Tensor::host({2, layout.out_dim()})); });
  call([&] {
    shard->start_forward(bags);
    expect_f32(shard->finish_forward(), {2, layout.out_dim()}, "finish_forward");
  });
  for (int64_t t = 0; t < layout.num_tables(); ++t)
    call([&] {
      expect_f32(shard->table_to_host(t), {layout.spec(t).rows, layout.spec(t).dim},
                 "table_to_host");
    });
  for (int slot = 0; slot < shard->num_states(); ++slot)
    call([&] {
      expect_f32(shard->state_to_host(slot), {state_size(opts.optimizer.kind, layout)},
                 "state_to_host");
    });
  call([&] { shard->set_table(0, Tensor::host({6, 2})); });
  call([&] { shard->set_steps(3); });
  shard.reset();  // sends a close and reads its reply (errors swallowed by the proxy)
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static std::unique_ptr<Backend> backend = make_host_backend();
  fuzz::ByteReader in(data, size);
  const uint8_t flags = in.byte();
  std::deque<Message> messages = split_messages(in);
  if (flags & 1)
    fuzz_parent(std::move(messages));
  else
    fuzz_server(*backend, std::move(messages));
  return 0;
}
