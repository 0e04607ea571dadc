#pragma once
// A self-contained file of named host tensors plus a JSON header (the model artefact, and later
// checkpoints). Layout:
//   "TESSERA1"            8-byte magic
//   u64 header_bytes      little-endian
//   header                JSON: {"meta": <caller's JSON>, "tensors": [{name, dtype, shape,
//                         offset, bytes}]}
//   tensor data           each tensor's bytes, 64-byte aligned offsets from the data start
//   u32 crc32             zlib CRC-32 of everything before it
// Written atomically; a truncated or corrupted file is an Io error naming the path.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "host/core/tensor.h"

namespace tessera {

struct Archive {
  std::string meta_json;                 // the caller's metadata object, serialised
  std::map<std::string, Tensor> tensors; // host tensors
};

void save_archive(const std::string& path, const std::string& meta_json,
                  const std::vector<std::pair<std::string, Tensor>>& tensors);
Archive load_archive(const std::string& path);

}  // namespace tessera
