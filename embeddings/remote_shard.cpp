// Requests and replies of a shard in another process (see remote_shard.h).
//
// A request is [u8 op][op's fields]; a reply is [u8 1][result] or [u8 0][u8 ErrorKind][message].
// Fields are fixed-width scalars in the machine's byte order (both ends must share it: the job's
// machines are alike), strings as [u64 length][bytes], and tensors as
// [u8 defined][u8 dtype][u8 rank][i64 dims...][the elements, row-major]. The create request
// starts with a protocol tag, so a server built from another version refuses it by name. A
// backward-and-update request carries, after the gradient, the f32 factor on the sparse
// optimizer's lr for that step (the lr schedule's multiplier; finite and > 0, checked by both
// ends).
#include "embeddings/remote_shard.h"

#include <cmath>
#include <cstring>
#include <deque>
#include <optional>

#include "host/core/checked_size.h"

namespace tessera::emb {
namespace {

constexpr uint32_t kProtocol = 0x32485354;  // "TSH2" (TSH1 had no lr factor in updates)

// A request or reply that does not decode (truncated, malformed, from another version): Error(Io).
#define TESSERA_MESSAGE_CHECK(cond, parts)                      \
  do {                                                          \
    if (!(cond)) TESSERA_THROW(Io, "shard message: " << parts); \
  } while (0)

enum class Op : uint8_t {
  Create = 1,
  Forward,
  BackwardUpdate,
  WeightGrad,
  TableToHost,
  SetTable,
  StateToHost,
  SetState,
  SetSteps,
  Close,
};

class Writer {
 public:
  explicit Writer(Op op) { u8(static_cast<uint8_t>(op)); }
  Writer() = default;
  void u8(uint8_t v) { m_.push_back(v); }
  template <typename T>
  void scalar(T v) {
    const size_t at = m_.size();
    m_.resize(at + sizeof(T));
    std::memcpy(m_.data() + at, &v, sizeof(T));
  }
  void str(const std::string& s) {
    scalar<uint64_t>(s.size());
    m_.insert(m_.end(), s.begin(), s.end());
  }
  void tensor(const Tensor& t) {
    u8(t.defined() ? 1 : 0);
    if (!t.defined()) return;
    TESSERA_CHECK(t.is_host(), "a shard message carries host tensors, got " << t.describe());
    u8(static_cast<uint8_t>(t.dtype()));
    u8(static_cast<uint8_t>(t.rank()));
    for (int i = 0; i < t.rank(); ++i) scalar<int64_t>(t.dim(i));
    const size_t at = m_.size();
    m_.resize(at + t.bytes());
    if (t.bytes() > 0) std::memcpy(m_.data() + at, t.raw(), t.bytes());
  }
  Message take() { return std::move(m_); }

 private:
  Message m_;
};

// Reads what Writer wrote; running past the end or a malformed field is an Error, not a crash.
class Reader {
 public:
  explicit Reader(const Message& m) : m_(m) {}
  uint8_t u8() {
    need(1);
    return m_[pos_++];
  }
  template <typename T>
  T scalar() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, m_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string str() {
    const uint64_t n = scalar<uint64_t>();
    need(n);
    std::string s(reinterpret_cast<const char*>(m_.data() + pos_), static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return s;
  }
  Tensor tensor() {
    if (u8() == 0) return Tensor();
    const uint8_t dt = u8();
    const uint8_t rank = u8();
    TESSERA_MESSAGE_CHECK(dt <= static_cast<uint8_t>(DType::I64) && rank <= 8,
                          "bad tensor header (dtype " << int{dt} << ", rank " << int{rank} << ")");
    Shape shape(rank);
    for (auto& d : shape) d = scalar<int64_t>();
    const std::optional<uint64_t> numel = checked_product(shape);
    TESSERA_MESSAGE_CHECK(numel, "bad tensor shape " << shape_str(shape));
    const DType dtype = static_cast<DType>(dt);
    TESSERA_MESSAGE_CHECK(*numel <= (m_.size() - pos_) / dtype_size(dtype),
                          "a tensor of " << *numel << " elements overruns the message");
    Tensor t = Tensor::host(shape, dtype);
    need(t.bytes());
    if (t.bytes() > 0) std::memcpy(t.raw(), m_.data() + pos_, t.bytes());
    pos_ += t.bytes();
    return t;
  }
  uint64_t remaining() const { return m_.size() - pos_; }
  void finish() const {
    TESSERA_MESSAGE_CHECK(pos_ == m_.size(),
                          "" << m_.size() - pos_ << " bytes left over after the fields");
  }

 private:
  void need(uint64_t n) const {
    TESSERA_MESSAGE_CHECK(n <= m_.size() - pos_,
                          "truncated (" << m_.size() - pos_ << " bytes left, " << n << " needed)");
  }
  const Message& m_;
  size_t pos_ = 0;
};

void write_bags(Writer& w, const Bags& b) {
  w.tensor(b.indices);
  w.tensor(b.offsets);
  w.tensor(b.weights);
  w.scalar<int64_t>(b.batch);
}
Bags read_bags(Reader& r) {
  Bags b;
  b.indices = r.tensor();
  b.offsets = r.tensor();
  b.weights = r.tensor();
  b.batch = r.scalar<int64_t>();
  TESSERA_MESSAGE_CHECK(b.indices.defined() && b.offsets.defined(), "bags without ids");
  return b;
}

void write_create(Writer& w, const std::vector<TableSpec>& specs, const CollectionOptions& o) {
  w.scalar<uint32_t>(kProtocol);
  w.scalar<uint64_t>(specs.size());
  for (const TableSpec& s : specs) {
    w.str(s.name);
    w.scalar<int64_t>(s.rows);
    w.scalar<int64_t>(s.dim);
    w.u8(static_cast<uint8_t>(s.pooling));
    w.u8(static_cast<uint8_t>(s.id_policy));
    w.u8(static_cast<uint8_t>(s.id_mapping));
  }
  // The optimizer's byte also carries the tables' storage: bits 0-3 the optimizer, 4-5 the table
  // dtype, 6 stochastic rounding (a request from before 16-bit tables has zeros there: f32).
  w.u8(static_cast<uint8_t>(static_cast<uint8_t>(o.optimizer.kind) |
                            (static_cast<uint8_t>(o.table_dtype) << 4) |
                            (o.stochastic_rounding ? 0x40 : 0)));
  for (float v : {o.optimizer.lr, o.optimizer.eps, o.optimizer.beta1, o.optimizer.beta2,
                  o.optimizer.initial_accumulator, o.init_scale})
    w.scalar<float>(v);
  w.scalar<uint64_t>(o.seed);
}

template <typename E>
E read_enum(Reader& r, uint8_t max, const char* what) {
  const uint8_t v = r.u8();
  TESSERA_MESSAGE_CHECK(v <= max, "bad " << what << " " << int{v});
  return static_cast<E>(v);
}

void read_create(Reader& r, std::vector<TableSpec>& specs, CollectionOptions& o) {
  const uint32_t protocol = r.scalar<uint32_t>();
  TESSERA_MESSAGE_CHECK(protocol == kProtocol, "protocol " << std::hex << protocol
                                                           << ", this server speaks " << kProtocol);
  const uint64_t n = r.scalar<uint64_t>();
  // Each spec takes at least 27 bytes (an empty name): no more than the message can hold.
  TESSERA_MESSAGE_CHECK(n <= r.remaining() / 27, n << " tables in " << r.remaining() << " bytes");
  specs.resize(static_cast<size_t>(n));
  for (TableSpec& s : specs) {
    s.name = r.str();
    s.rows = r.scalar<int64_t>();
    s.dim = r.scalar<int64_t>();
    s.pooling = read_enum<Pooling>(r, 1, "pooling");
    s.id_policy = read_enum<IdPolicy>(r, 1, "id policy");
    s.id_mapping = read_enum<IdMapping>(r, 1, "id mapping");
  }
  const uint8_t packed = r.u8();
  TESSERA_MESSAGE_CHECK((packed & 0x0F) <= 3 && ((packed >> 4) & 3) <= 2 && (packed & 0x80) == 0,
                        "bad optimizer / table storage byte " << int{packed});
  o.optimizer.kind = static_cast<SparseOptimizer>(packed & 0x0F);
  o.table_dtype = static_cast<TableDType>((packed >> 4) & 3);
  o.stochastic_rounding = (packed & 0x40) != 0;
  for (float* v : {&o.optimizer.lr, &o.optimizer.eps, &o.optimizer.beta1, &o.optimizer.beta2,
                   &o.optimizer.initial_accumulator, &o.init_scale})
    *v = r.scalar<float>();
  o.seed = r.scalar<uint64_t>();
}

// The lr factor an update carries: a schedule's multiplier, so finite and > 0 (a NaN, an Inf or
// a negative factor would corrupt the tables, and 0 is no step at all).
void check_lr_scale(float scale) {
  if (!(std::isfinite(scale) && scale > 0.f))
    TESSERA_THROW(Usage, "a remote shard's sparse lr factor must be finite and > 0, got " << scale);
}

// Checks a reply's status: returns a reader positioned at the result, or throws the far side's
// error with its kind.
Reader open_reply(const Message& reply, const std::string& where) {
  Reader r(reply);
  if (r.u8() == 1) return r;
  const uint8_t kind = r.u8();
  const std::string message = r.str();
  throw Error(kind <= static_cast<uint8_t>(ErrorKind::Internal) ? static_cast<ErrorKind>(kind)
                                                                : ErrorKind::Internal,
              "shard on " + where + ": " + message);
}

class RemoteShard final : public EmbeddingShard {
 public:
  RemoteShard(std::unique_ptr<ShardChannel> channel, std::vector<TableSpec> specs,
              const CollectionOptions& opts)
      : channel_(std::move(channel)), layout_(specs), opts_(opts) {
    Writer w(Op::Create);
    write_create(w, specs, opts);
    Reader r = call(w);
    where_ = channel_->where() + ": " + r.str();
    r.finish();
  }
  ~RemoteShard() override {
    try {
      Writer w(Op::Close);
      call(w);
    } catch (...) {
      // A closed channel (the server already gone) has nothing left to close.
    }
  }
  const TableLayout& layout() const override { return layout_; }
  Tensor forward(const Bags& host_bags) override {
    start_forward(host_bags);
    return finish_forward();
  }
  void backward_update(const Tensor& host_dout) override {
    start_backward_update(host_dout);
    finish_backward_update();
  }
  Tensor weight_grad(const Tensor& host_dout) override {
    Writer w(Op::WeightGrad);
    w.tensor(host_dout);
    return tensor_result(w, {forward_nnz_}, "weight_grad");
  }
  Tensor table_to_host(int64_t t) override {
    Writer w(Op::TableToHost);
    w.scalar<int64_t>(t);
    // A table this shard has not is refused by the far side (its error comes back first).
    const bool known = t >= 0 && t < layout_.num_tables();
    const Shape shape = known ? Shape{layout_.spec(t).rows, layout_.spec(t).dim} : Shape{0, 0};
    return tensor_result(w, shape, "table_to_host");
  }
  void set_table(int64_t t, const Tensor& v) override {
    Writer w(Op::SetTable);
    w.scalar<int64_t>(t);
    w.tensor(v);
    call(w).finish();
  }
  int num_states() const override { return state_slots(opts_.optimizer.kind); }
  Tensor state_to_host(int slot) override {
    Writer w(Op::StateToHost);
    w.scalar<int32_t>(slot);
    return tensor_result(w, {state_size(opts_.optimizer.kind, layout_)}, "state_to_host");
  }
  void set_state(int slot, const Tensor& v) override {
    Writer w(Op::SetState);
    w.scalar<int32_t>(slot);
    w.tensor(v);
    call(w).finish();
  }
  void set_steps(int64_t steps) override {
    Writer w(Op::SetSteps);
    w.scalar<int64_t>(steps);
    call(w).finish();
  }
  // Kept here and sent with each update (the far side applies it to that step).
  void set_lr_scale(float scale) override {
    check_lr_scale(scale);
    lr_scale_ = scale;
  }
  std::string where() const override { return where_; }

  // The request goes out now; the reply is read when the parent has started every shard.
  void start_forward(const Bags& host_bags) override {
    Writer w(Op::Forward);
    write_bags(w, host_bags);
    send(w);
    forward_batch_ = host_bags.batch;
    forward_nnz_ = host_bags.indices.numel();
  }
  Tensor finish_forward() override {
    return tensor_reply({forward_batch_, layout_.out_dim()}, "forward");
  }
  void start_backward_update(const Tensor& host_dout) override {
    Writer w(Op::BackwardUpdate);
    w.tensor(host_dout);
    w.scalar<float>(lr_scale_);
    send(w);
  }
  void finish_backward_update() override { reply().finish(); }

 private:
  // One request at a time: a reply still unread (the parent failed between a start_* and its
  // finish_*) is drained first, so the next reply read belongs to the next request.
  void send(Writer& w) {
    if (awaiting_) reply_ = channel_->receive();
    channel_->send(w.take());
    awaiting_ = true;
  }
  Reader call(Writer& w) {
    send(w);
    return reply();
  }
  Reader reply() {
    reply_ = channel_->receive();
    awaiting_ = false;
    return open_reply(reply_, where_.empty() ? channel_->where() : where_);
  }
  // The reply's tensor, which must be the f32 [shape] the call returns: the parent indexes it
  // by its own layout, so a reply of another size (a far side that is not the server this
  // parent started, or a corrupted message) is an Error(Io), not an out-of-bounds read.
  Tensor tensor_reply(const Shape& shape, const char* call) {
    Reader r = reply();
    Tensor t = r.tensor();
    r.finish();
    if (!t.defined() || t.dtype() != DType::F32 || t.numel() != shape_numel(shape))
      TESSERA_THROW(Io, "shard on " << where() << ": the reply to " << call << " holds "
                                    << (t.defined() ? t.describe() : std::string("no tensor"))
                                    << ", expected f32" << shape_str(shape));
    return t.reshape(shape);
  }
  Tensor tensor_result(Writer& w, const Shape& shape, const char* call) {
    send(w);
    return tensor_reply(shape, call);
  }

  std::unique_ptr<ShardChannel> channel_;
  TableLayout layout_;
  CollectionOptions opts_;
  std::string where_;
  float lr_scale_ = 1.f;   // the factor on the sparse lr the next updates carry
  Message reply_;          // the last reply (a Reader reads it in place)
  bool awaiting_ = false;  // a request was sent and its reply not yet read
  int64_t forward_batch_ = 0, forward_nnz_ = 0;  // the last forward's bags: its replies' sizes
};

class LoopbackChannel final : public ShardChannel {
 public:
  explicit LoopbackChannel(Backend& backend) : server_(backend) {}
  void send(Message request) override { replies_.push_back(server_.handle(request)); }
  Message receive() override {
    TESSERA_CHECK(!replies_.empty(), "loopback shard channel: receive without a request");
    Message m = std::move(replies_.front());
    replies_.pop_front();
    return m;
  }
  std::string where() const override { return "loopback"; }

 private:
  ShardServer server_;
  std::deque<Message> replies_;
};

}  // namespace

std::unique_ptr<EmbeddingShard> make_remote_shard(std::unique_ptr<ShardChannel> channel,
                                                  std::vector<TableSpec> specs,
                                                  const CollectionOptions& opts) {
  return std::make_unique<RemoteShard>(std::move(channel), std::move(specs), opts);
}

ShardServer::ShardServer(Backend& backend, int64_t memory_limit_bytes)
    : backend_(&backend), memory_limit_(memory_limit_bytes) {}
ShardServer::~ShardServer() = default;

namespace {

// The shard a create request asks for, made on `backend` once its tables and optimizer state are
// known to fit in `memory_limit` bytes (0: no limit of the server's own).
std::unique_ptr<EmbeddingShard> create_shard(Reader& r, Backend& backend, int64_t memory_limit) {
  std::vector<TableSpec> specs;
  CollectionOptions opts;
  read_create(r, specs, opts);
  r.finish();
  if (memory_limit > 0) {
    const TableLayout layout(specs);  // sizes checked: no overflow below
    const int64_t bytes =
        table_dtype_bytes(opts.table_dtype) * layout.total_elements() +
        4 * state_slots(opts.optimizer.kind) * state_size(opts.optimizer.kind, layout);
    TESSERA_MESSAGE_CHECK(bytes <= memory_limit, "the tables asked for take "
                                                     << bytes << " bytes, over this server's "
                                                     << memory_limit << "-byte limit");
  }
  return make_local_shard(std::move(specs), backend, opts);
}

// The rest of a request naming a table or an optimizer state: its index and, where `value` is
// given, the tensor to store there. Read to the end before the index is checked against the
// shard's `count` of them.
template <typename Index>
Index read_index(Reader& r, const char* what, int64_t count, Tensor* value = nullptr) {
  const Index index = r.scalar<Index>();
  if (value) *value = r.tensor();
  r.finish();
  TESSERA_MESSAGE_CHECK(index >= 0 && index < count, what << " " << index << " of " << count);
  return index;
}

// Every request to a shard that exists but Create and Close: the training steps and the tables'
// and optimizer state's transfers. Indices from the message are checked against the shard.
void serve_request(uint8_t op, Reader& r, EmbeddingShard& shard, Writer& out) {
  switch (static_cast<Op>(op)) {
    case Op::Forward: {
      const Bags b = read_bags(r);
      r.finish();
      out.tensor(shard.forward(b));
      break;
    }
    case Op::BackwardUpdate: {
      const Tensor d = r.tensor();
      const float lr_scale = r.scalar<float>();
      r.finish();
      TESSERA_MESSAGE_CHECK(std::isfinite(lr_scale) && lr_scale > 0.f,
                            "lr factor " << lr_scale << " (must be finite and > 0)");
      shard.set_lr_scale(lr_scale);
      shard.backward_update(d);
      break;
    }
    case Op::WeightGrad: {
      const Tensor d = r.tensor();
      r.finish();
      out.tensor(shard.weight_grad(d));
      break;
    }
    case Op::TableToHost:
      out.tensor(shard.table_to_host(read_index<int64_t>(r, "table", shard.layout().num_tables())));
      break;
    case Op::SetTable: {
      Tensor v;
      const int64_t t = read_index<int64_t>(r, "table", shard.layout().num_tables(), &v);
      shard.set_table(t, v);
      break;
    }
    case Op::StateToHost:
      out.tensor(
          shard.state_to_host(read_index<int32_t>(r, "optimizer state", shard.num_states())));
      break;
    case Op::SetState: {
      Tensor v;
      const int32_t slot = read_index<int32_t>(r, "optimizer state", shard.num_states(), &v);
      shard.set_state(slot, v);
      break;
    }
    case Op::SetSteps: {
      const int64_t steps = r.scalar<int64_t>();
      r.finish();
      TESSERA_MESSAGE_CHECK(steps >= 0, "step count " << steps);
      shard.set_steps(steps);
      break;
    }
    default:
      TESSERA_THROW(Io, "shard message: unknown op " << int{op});
  }
}

// The reply to a request that failed: [u8 0][u8 ErrorKind][message].
Message error_reply(ErrorKind kind, const char* message) {
  Writer err;
  err.u8(0);
  err.u8(static_cast<uint8_t>(kind));
  err.str(message);
  return err.take();
}

}  // namespace

Message ShardServer::handle(const Message& request) {
  Writer out;
  out.u8(1);
  try {
    Reader r(request);
    const uint8_t op = r.u8();
    TESSERA_MESSAGE_CHECK(static_cast<Op>(op) == Op::Create || shard_,
                          "op " << int{op} << " before the shard was created");
    switch (static_cast<Op>(op)) {
      case Op::Create:
        TESSERA_MESSAGE_CHECK(!shard_, "the shard exists already");
        shard_ = create_shard(r, *backend_, memory_limit_);
        closed_ = false;
        out.str(shard_->where());
        break;
      case Op::Close:
        r.finish();
        shard_.reset();
        closed_ = true;
        break;
      default:
        serve_request(op, r, *shard_, out);
    }
    return out.take();
  } catch (const Error& e) {
    return error_reply(e.kind(), e.what());
  } catch (const std::exception& e) {
    return error_reply(ErrorKind::Internal, e.what());
  }
}

std::unique_ptr<ShardChannel> make_loopback_channel(Backend& backend) {
  return std::make_unique<LoopbackChannel>(backend);
}

ShardFactory remote_shard_factory(std::function<std::unique_ptr<ShardChannel>(int shard)> channel) {
  return [channel](int k, std::vector<TableSpec> specs, const CollectionOptions& opts) {
    return make_remote_shard(channel(k), std::move(specs), opts);
  };
}

}  // namespace tessera::emb
