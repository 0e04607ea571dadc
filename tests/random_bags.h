// Random embedding batches for the embedding tests: per table, `batch` bags of 0..max_len ids
// drawn from [0, min(rows, id_mod)) (a hashed table gets raw ids, negatives too), with per-sample
// weights in [-2, 2) when `weighted`.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "embeddings/collection.h"

namespace tessera::emb {

inline Bags random_bags(const std::vector<TableSpec>& sp, int64_t batch, int max_len, bool weighted,
                        int64_t id_mod, std::mt19937& gen) {
  std::vector<std::vector<std::vector<int64_t>>> ids(sp.size());
  std::vector<std::vector<std::vector<float>>> w(weighted ? sp.size() : 0);
  for (size_t t = 0; t < sp.size(); ++t) {
    ids[t].resize(static_cast<size_t>(batch));
    if (weighted) w[t].resize(static_cast<size_t>(batch));
    for (int64_t s = 0; s < batch; ++s) {
      const int len = std::uniform_int_distribution<int>(0, max_len)(gen);
      for (int k = 0; k < len; ++k) {
        int64_t id =
            std::uniform_int_distribution<int64_t>(0, std::min(sp[t].rows, id_mod) - 1)(gen);
        if (sp[t].id_mapping == IdMapping::Hash) id = id * 1000003 - 777;  // raw ids, negatives too
        ids[t][static_cast<size_t>(s)].push_back(id);
        if (weighted)
          w[t][static_cast<size_t>(s)].push_back(std::uniform_real_distribution<float>(-2, 2)(gen));
      }
    }
  }
  return make_host_bags(ids, w);
}

}  // namespace tessera::emb
