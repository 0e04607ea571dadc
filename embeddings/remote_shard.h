// Shards in another process. An EmbeddingShard's calls carry only host tensors and scalars, so
// each can travel as one request message and one reply:
//   - RemoteShard (make_remote_shard) is the parent's side: it encodes every call, sends it down a
//     ShardChannel and decodes the reply (an error on the far side is re-thrown here with its kind
//     and message);
//   - ShardServer is the far side: it decodes a request, runs it on a local shard it created from
//     the first message (the shard's table specs and options), and encodes the reply.
// The channel is a byte transport: in-process (make_loopback_channel, which still encodes and
// decodes every call; tests) or MPI (embeddings/mpi/mpi_shards.h, one process per shard server).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "embeddings/sharding.h"

namespace tessera::emb {

using Message = std::vector<uint8_t>;

// Requests out, replies in, in order: each send() is answered by the next receive(). The caller
// may do other work (start other shards) between the two.
class ShardChannel {
 public:
  virtual ~ShardChannel() = default;
  virtual void send(Message request) = 0;
  virtual Message receive() = 0;
  Message call(Message request) {
    send(std::move(request));
    return receive();
  }
  virtual std::string where() const = 0;  // e.g. "loopback" or "mpi rank 2"
};

// The parent's proxy for a shard behind `channel`: creates it there (specs, opts) and forwards
// every EmbeddingShard call. Its destructor tells the server the shard is closed.
std::unique_ptr<EmbeddingShard> make_remote_shard(std::unique_ptr<ShardChannel> channel,
                                                  std::vector<TableSpec> specs,
                                                  const CollectionOptions& opts);

class ShardServer {
 public:
  // The shard a create message asks for is made by make_local_shard on `backend`. Its tables and
  // optimizer state may take at most `memory_limit_bytes` (0: as much as the backend's storage
  // allows, i.e. the machine's memory on the host); a request for more is refused by name.
  explicit ShardServer(Backend& backend, int64_t memory_limit_bytes = 0);
  ~ShardServer();
  // Decodes and runs one request; the reply reports success (with the call's result) or the
  // error it raised. A message that does not decode is an error reply too, never a crash.
  Message handle(const Message& request);
  // True once the parent closed the shard.
  bool closed() const { return closed_; }

 private:
  Backend* backend_;
  int64_t memory_limit_;
  std::unique_ptr<EmbeddingShard> shard_;
  bool closed_ = false;
};

// In-process: every call is encoded, handled by a ShardServer on `backend`, and decoded.
std::unique_ptr<ShardChannel> make_loopback_channel(Backend& backend);

// A ShardedEmbeddingCollection whose shards all sit behind channels: shard k behind
// channel(k, its table specs).
ShardFactory remote_shard_factory(std::function<std::unique_ptr<ShardChannel>(int shard)> channel);

}  // namespace tessera::emb
