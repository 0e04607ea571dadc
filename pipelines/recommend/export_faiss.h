#pragma once
// FAISS index files for exported embeddings (libfaiss, optional at build time: without it,
// faiss_available() is false and the functions throw Error(Usage) saying how to get it).
// The index is exact inner-product search (IndexFlatIP) under an IndexIDMap2 carrying the raw
// ids, so a search returns the same top-K as brute force over the exported vectors.
#include <cstdint>
#include <string>
#include <vector>

namespace tessera::recommend {

bool faiss_available();
// x [rows, dim] row-major, ids [rows]; written atomically.
void write_faiss_index(const std::string& path, const float* x, int64_t rows, int64_t dim,
                       const int64_t* ids);
// Top-k ids for each query [n, dim] (row-major result [n, k]), best first.
std::vector<int64_t> faiss_search(const std::string& path, const float* queries, int64_t n,
                                  int64_t dim, int64_t k);

}  // namespace tessera::recommend
