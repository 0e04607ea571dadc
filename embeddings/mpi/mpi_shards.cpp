// Shard channels over MPI (see mpi_shards.h). Rank 0 makes one call at a time per shard, and
// MPI keeps messages between two ranks on one tag in order, so a request and its reply need no
// sequence numbers: a message is [i64 length] then the bytes in pieces of at most 1 GiB.
// The receiver checks each piece's size against the length before it makes room for it.
#include "embeddings/mpi/mpi_shards.h"

#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <vector>

namespace tessera::emb {
namespace {

constexpr int kStopTag = 0;  // shard proxies talk on tags 1, 2, ...
constexpr int64_t kPiece = int64_t{1} << 30;

void check_mpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int n = 0;
  MPI_Error_string(rc, text, &n);
  throw Error(ErrorKind::Backend, std::string("MPI ") + what + ": " + std::string(text, n));
}

int world_size() {
  int size = 0;
  check_mpi(MPI_Comm_size(MPI_COMM_WORLD, &size), "Comm_size");
  return size;
}

void send_message(const Message& m, int peer, int tag) {
  const int64_t n = static_cast<int64_t>(m.size());
  check_mpi(MPI_Send(&n, 1, MPI_INT64_T, peer, tag, MPI_COMM_WORLD), "Send");
  for (int64_t at = 0; at < n; at += kPiece)
    check_mpi(MPI_Send(m.data() + at, static_cast<int>(std::min(kPiece, n - at)), MPI_BYTE, peer,
                       tag, MPI_COMM_WORLD),
              "Send");
}

}  // namespace

Message recv_mpi_message(int peer, int tag) {
  int64_t n = 0;
  check_mpi(MPI_Recv(&n, 1, MPI_INT64_T, peer, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE), "Recv");
  if (n < 0)
    TESSERA_THROW(Io, "MPI shard message from rank " << peer << " declares " << n << " bytes");
  // The length comes from another process: the buffer grows only by each piece that has actually
  // arrived (probed for its size first), so a corrupt length allocates nothing it is not sent.
  Message m;
  for (int64_t at = 0; at < n;) {
    MPI_Status status;
    check_mpi(MPI_Probe(peer, tag, MPI_COMM_WORLD, &status), "Probe");
    int count = 0;
    check_mpi(MPI_Get_count(&status, MPI_BYTE, &count), "Get_count");
    const int64_t due = std::min(kPiece, n - at);
    if (count != due)
      TESSERA_THROW(Io, "MPI shard message from rank "
                            << peer << " declares " << n << " bytes, but its piece at byte " << at
                            << " holds " << count << " (" << due << " due)");
    m.resize(static_cast<size_t>(at + count));
    check_mpi(
        MPI_Recv(m.data() + at, count, MPI_BYTE, peer, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE),
        "Recv");
    at += count;
  }
  return m;
}

namespace {

// The parent's end. Its sends do not wait for the server: the parent sends every shard's request
// before it reads any reply, and a server with two of those shards may still be handing back the
// first reply (a large reply waits until the parent reads it) when the second request comes.
class MpiChannel final : public ShardChannel {
 public:
  MpiChannel(int rank, int tag) : rank_(rank), tag_(tag) {}
  ~MpiChannel() override {
    try {
      wait_sends();
    } catch (...) {
      // MPI failed: nothing left to wait for.
    }
  }
  void send(Message request) override {
    wait_sends();
    out_ = std::move(request);
    length_ = static_cast<int64_t>(out_.size());
    sends_.emplace_back();
    check_mpi(MPI_Isend(&length_, 1, MPI_INT64_T, rank_, tag_, MPI_COMM_WORLD, &sends_.back()),
              "Isend");
    for (int64_t at = 0; at < length_; at += kPiece) {
      sends_.emplace_back();
      check_mpi(MPI_Isend(out_.data() + at, static_cast<int>(std::min(kPiece, length_ - at)),
                          MPI_BYTE, rank_, tag_, MPI_COMM_WORLD, &sends_.back()),
                "Isend");
    }
  }
  Message receive() override {
    Message reply = recv_mpi_message(rank_, tag_);
    wait_sends();
    return reply;
  }
  std::string where() const override { return "mpi rank " + std::to_string(rank_); }

 private:
  void wait_sends() {
    if (sends_.empty()) return;
    check_mpi(MPI_Waitall(static_cast<int>(sends_.size()), sends_.data(), MPI_STATUSES_IGNORE),
              "Waitall");
    sends_.clear();
  }
  int rank_, tag_;
  Message out_;  // the request in flight (its buffers must live until the sends complete)
  int64_t length_ = 0;
  std::vector<MPI_Request> sends_;
};

}  // namespace

std::unique_ptr<ShardChannel> make_mpi_shard_channel(int shard) {
  const int size = world_size();
  if (size < 2)
    TESSERA_THROW(Usage, "shards in other processes need an MPI world of at least 2 ranks, got "
                             << size << " (run under mpirun -np N, N >= 2)");
  TESSERA_CHECK(shard >= 0, "shard " << shard);
  // Each proxy talks on a tag of its own (two collections may hold a shard k each), handed out
  // in turn; the server keeps one ShardServer per live tag. MPI guarantees tags up to 32767.
  int* tag_ub = nullptr;
  int found = 0;
  check_mpi(MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &tag_ub, &found), "Comm_get_attr");
  const int last = found ? *tag_ub : 32767;
  static std::atomic<uint32_t> made{0};  // pipeline stages may make shards on two threads
  const int tag = kStopTag + 1 + static_cast<int>(made++ % static_cast<uint32_t>(last));
  return std::make_unique<MpiChannel>(1 + shard % (size - 1), tag);
}

ShardFactory mpi_shard_factory() {
  return remote_shard_factory([](int shard) { return make_mpi_shard_channel(shard); });
}

int64_t serve_mpi_shards(Backend& backend) {
  std::map<int, std::unique_ptr<ShardServer>> servers;  // by tag
  int64_t served = 0;
  for (;;) {
    MPI_Status status;
    check_mpi(MPI_Probe(0, MPI_ANY_TAG, MPI_COMM_WORLD, &status), "Probe");
    const int tag = status.MPI_TAG;
    const Message request = recv_mpi_message(0, tag);
    if (tag == kStopTag) return served;
    std::unique_ptr<ShardServer>& server = servers[tag];
    if (!server) server = std::make_unique<ShardServer>(backend);
    send_message(server->handle(request), 0, tag);
    if (server->closed()) servers.erase(tag);
    ++served;
  }
}

void stop_mpi_shard_servers() {
  const int size = world_size();
  for (int r = 1; r < size; ++r) send_message({}, r, kStopTag);
}

}  // namespace tessera::emb
