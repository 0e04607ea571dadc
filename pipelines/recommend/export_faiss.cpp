#include "pipelines/recommend/export_faiss.h"

#include <unistd.h>
#include <cstdio>
#include <memory>

#include "host/core/error.h"

#if TESSERA_HAVE_FAISS
#include <faiss/IndexFlat.h>
#include <faiss/IndexIDMap.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_io.h>

namespace {
using FaissId = faiss::Index::idx_t;  // faiss::idx_t in later releases
}
#endif

namespace tessera::recommend {

#if TESSERA_HAVE_FAISS

bool faiss_available() {
  return true;
}

void write_faiss_index(const std::string& path, const float* x, int64_t rows, int64_t dim,
                       const int64_t* ids) {
  faiss::IndexFlatIP flat(static_cast<FaissId>(dim));
  faiss::IndexIDMap2 index(&flat);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  try {
    index.add_with_ids(static_cast<FaissId>(rows), x, reinterpret_cast<const FaissId*>(ids));
    faiss::write_index(&index, tmp.c_str());
  } catch (const faiss::FaissException& e) {
    std::remove(tmp.c_str());
    TESSERA_THROW(Io, path << ": writing the FAISS index failed: " << e.what());
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    TESSERA_THROW(Io, path << ": cannot rename the FAISS index into place");
  }
}

std::vector<int64_t> faiss_search(const std::string& path, const float* queries, int64_t n,
                                  int64_t dim, int64_t k) {
  std::vector<int64_t> labels(static_cast<size_t>(n * k));
  std::vector<float> distances(static_cast<size_t>(n * k));
  try {
    std::unique_ptr<faiss::Index> index(faiss::read_index(path.c_str()));
    if (index->d != dim)
      TESSERA_THROW(Data, path << ": index dimension " << index->d << ", queries " << dim);
    index->search(static_cast<FaissId>(n), queries, static_cast<FaissId>(k), distances.data(),
                  reinterpret_cast<FaissId*>(labels.data()));
  } catch (const faiss::FaissException& e) {
    TESSERA_THROW(Io, path << ": FAISS: " << e.what());
  }
  return labels;
}

#else

namespace {
[[noreturn]] void no_faiss() {
  TESSERA_THROW(Usage,
                "this tessera was built without FAISS: install libfaiss-dev "
                "(apt-get install libfaiss-dev) and reconfigure, or export with --format "
                "npy, safetensors or word2vec");
}
}  // namespace

bool faiss_available() {
  return false;
}
void write_faiss_index(const std::string&, const float*, int64_t, int64_t, const int64_t*) {
  no_faiss();
}
std::vector<int64_t> faiss_search(const std::string&, const float*, int64_t, int64_t, int64_t) {
  no_faiss();
}

#endif

}  // namespace tessera::recommend
