#pragma once
// A self-contained file of named host tensors plus a JSON header (the model artefact, and later
// checkpoints). Layout:
//   "TESSERA1"            8-byte magic
//   u64 header_bytes      little-endian
//   header                JSON: {"meta": <caller's JSON>, "tensors": [{name, dtype, shape,
//                         offset, bytes}]}
//   tensor data           each tensor's bytes, 64-byte aligned offsets from the data start
//   u32 crc32             zlib CRC-32 of everything before it (any file size: the CRC is taken
//                         in pieces, zlib's crc32 counts bytes in 32 bits)
// Written atomically, streamed (header, then each tensor in 1 MiB pieces, the CRC taken on the
// way; the metadata is written as given after a SAX check that it is JSON); read in place with
// pread (the CRC in pieces, each tensor straight into its buffer): neither side ever holds the
// file's bytes beside the tensors. A truncated or corrupted file is an Io error naming the path.
//
// Reading trusts nothing in the file: the header length, every tensor's offset, byte count and
// shape (an element count in checked arithmetic) must fit inside the bytes actually present
// before anything is allocated; every header field is type-checked (an Io error naming the
// field); the header JSON may nest at most kJsonMaxNesting levels (host/core/json_fields.h).
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "host/core/tensor.h"

namespace tessera {

struct Archive {
  std::string meta_json;                  // the caller's metadata object, serialised
  std::map<std::string, Tensor> tensors;  // host tensors
};

void save_archive(const std::string& path, const std::string& meta_json,
                  const std::vector<std::pair<std::string, Tensor>>& tensors);
Archive load_archive(const std::string& path);
// Only the caller's metadata object of the archive at `path`, serialised, read without loading the
// tensors or checking the CRC (load_archive checks everything): for routing a model file to its
// task. Io error naming the path when the file has no readable header.
std::string load_archive_meta(const std::string& path);

// Model and checkpoint loaders call this on the weights they are about to use: an f32 tensor
// holding NaN or infinity (which training never writes: it stops first) is an Io error naming
// `path`, the tensor and the element.
void check_finite(const std::map<std::string, Tensor>& tensors, const std::string& path);

// zlib's CRC-32 of any number of bytes, fed to zlib `chunk` bytes at a time (the default keeps
// each piece inside zlib's 32-bit length; tests pass a small chunk to exercise the seams).
uint32_t crc32_of(const void* data, size_t size, size_t chunk = size_t{1} << 30);

}  // namespace tessera
