// Embedding shards in other MPI processes (built when CMake finds MPI: tessera_mpi_shards).
// Rank 0 runs the ShardedEmbeddingCollection (id resolution, routing, the dense model); shard k
// lives on rank 1 + k mod (world size - 1), so any number of shards runs on two or more ranks.
// Each request/reply of remote_shard.h travels as one tagged message pair between rank 0 and the
// shard's rank (each shard proxy has a tag of its own; messages over 1 GiB go in pieces). Rank 0
// starts every shard's forward (backward) before it reads any reply, so their work overlaps.
// A waiting server rank polls (Open MPI spins in MPI_Probe): on one machine give each rank fewer
// OpenMP threads (OMP_NUM_THREADS) when the ranks outnumber the cores.
//
//   MPI_Init(...);
//   if (rank == 0) { ShardedEmbeddingCollection emb(specs, plan, mpi_shard_factory(), opts);
//                    ...; } stop_mpi_shard_servers();   // after every collection is gone
//   else serve_mpi_shards(backend);
//   MPI_Finalize();
#pragma once

#include <cstdint>

#include "embeddings/remote_shard.h"

namespace tessera::emb {

// Rank 0: the channel to shard k (rank 1 + k mod (size - 1)), and the factory of collections
// whose shards all live on the other ranks. Throws Error(Usage) on a world of one rank.
std::unique_ptr<ShardChannel> make_mpi_shard_channel(int shard);
ShardFactory mpi_shard_factory();

// The other ranks: serve every shard rank 0 creates here, until stop_mpi_shard_servers. Returns
// the number of requests served.
int64_t serve_mpi_shards(Backend& backend);
// Rank 0: tells every other rank to return from serve_mpi_shards.
void stop_mpi_shard_servers();

// One framed message from `peer` on `tag`: [i64 length] then the bytes in pieces of at most
// 1 GiB. Memory grows only by the pieces that arrive, each checked against the declared length;
// a negative length or a piece of the wrong size is an Error(Io) (nothing is allocated for a
// length that is never sent).
Message recv_mpi_message(int peer, int tag);

}  // namespace tessera::emb
