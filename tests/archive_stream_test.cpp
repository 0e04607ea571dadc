// save_archive streams the file and load_archive reads it in place (no copy of it in memory): the
// bytes written must still be the layout archive.h documents, checked here against that layout
// rebuilt independently (zlib's CRC-32 over the whole file at once, 64-byte aligned data offsets,
// zero padding), across the writer's 1 MiB pieces, and loaded back equal.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <unistd.h>
#include <zlib.h>

#include <cstring>
#include <string>
#include <vector>

#include "host/core/archive.h"
#include "host/core/atomic_file.h"
#include "host/core/error.h"

namespace tessera {
namespace {

TEST(ArchiveStream, BytesFollowTheDocumentedLayoutAndLoadBack) {
  const std::string path = "/tmp/tessera_archive_stream_" + std::to_string(::getpid()) + ".tsm";
  std::vector<float> big((size_t{1} << 18) + 3);  // 1 MiB + 12 bytes: crosses a piece
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<float>(i % 1000) * 0.5f;
  const std::vector<std::pair<std::string, Tensor>> tensors = {
      {"odd", Tensor::host_from<float>({3}, {1.f, 2.f, 3.f})},  // 12 bytes: 52 of padding
      {"big", Tensor::host_from<float>({static_cast<int64_t>(big.size())}, big)},
      {"empty", Tensor::host({0})},
      {"last", Tensor::host_from<float>({2, 2}, {4.f, 5.f, 6.f, 7.f})}};
  const std::string meta = R"({"task":"test","nested":{"a":[1,2.5,"x"]}})";
  save_archive(path, meta, tensors);
  const std::string file = read_file(path);

  ASSERT_GT(file.size(), 20u);
  EXPECT_EQ(file.compare(0, 8, "TESSERA1"), 0);
  uint64_t hb = 0;
  std::memcpy(&hb, file.data() + 8, 8);
  rapidjson::Document header;
  header.Parse(file.data() + 16, static_cast<size_t>(hb));
  ASSERT_FALSE(header.HasParseError());
  EXPECT_EQ(std::string(file, 16, 9), "{\"meta\":{");
  // The data: each tensor at its 64-byte aligned offset, zeros between, in order.
  std::string data;
  const auto& list = header["tensors"];
  ASSERT_EQ(list.Size(), tensors.size());
  for (rapidjson::SizeType i = 0; i < list.Size(); ++i) {
    const Tensor& t = tensors[i].second;
    EXPECT_EQ(list[i]["name"].GetString(), tensors[i].first);
    EXPECT_EQ(list[i]["offset"].GetUint64(), (data.size() + 63) / 64 * 64);
    EXPECT_EQ(list[i]["bytes"].GetUint64(), t.bytes());
    data.resize((data.size() + 63) / 64 * 64, '\0');
    data.append(static_cast<const char*>(t.raw()), t.bytes());
  }
  const size_t data_start = 16 + static_cast<size_t>(hb);
  ASSERT_EQ(file.size(), data_start + data.size() + 4);
  EXPECT_TRUE(file.compare(data_start, data.size(), data) == 0);
  uint32_t crc = 0;
  std::memcpy(&crc, file.data() + file.size() - 4, 4);
  const uLong want = crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(file.data()),
                           static_cast<uInt>(file.size() - 4));
  EXPECT_EQ(crc, static_cast<uint32_t>(want));

  const Archive a = load_archive(path);
  EXPECT_EQ(a.meta_json, meta);
  ASSERT_EQ(a.tensors.size(), tensors.size());
  EXPECT_EQ(std::memcmp(a.tensors.at("big").raw(), big.data(), big.size() * 4), 0);
  ::unlink(path.c_str());
}

TEST(ArchiveStream, BadMetaIsRefusedBeforeAnyFileIsWritten) {
  const std::string path = "/tmp/tessera_archive_bad_" + std::to_string(::getpid()) + ".tsm";
  const std::vector<std::pair<std::string, Tensor>> one = {
      {"w", Tensor::host_from<float>({1}, {1.f})}};
  EXPECT_THROW(save_archive(path, "{\"a\":", one), Error);
  EXPECT_THROW(save_archive(path, "{} {}", one), Error);
  EXPECT_THROW(save_archive(path, std::string("{}\0x", 4), one), Error);
  EXPECT_NE(::access(path.c_str(), F_OK), 0);
}

// load_archive reads in place (pread: the CRC in pieces, each tensor into its own buffer): every
// damaged file is still an Io error naming the path, before any tensor is returned.
TEST(ArchiveStream, DamagedFilesAreIoErrorsNamingThePath) {
  const std::string path = "/tmp/tessera_archive_damaged_" + std::to_string(::getpid()) + ".tsm";
  std::vector<float> w((size_t{1} << 18) + 5, 0.25f);  // more than one CRC piece
  save_archive(path, R"({"k":1})",
               {{"w", Tensor::host_from<float>({static_cast<int64_t>(w.size())}, w)}});
  const std::string good = read_file(path);
  auto load_error = [&](const std::string& bytes) {
    write_file_atomic(path, bytes);
    try {
      load_archive(path);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("loaded");
  };
  std::string flipped = good;
  flipped[good.size() / 2] ^= 0x10;  // a tensor byte
  for (const std::string& bytes : {flipped, good.substr(0, good.size() - 100), good.substr(0, 19),
                                   std::string("NOTTESSERA") + good}) {
    const std::string msg = load_error(bytes);
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("not a valid tessera file"), std::string::npos) << msg;
  }
  EXPECT_NE(load_error(flipped).find("checksum mismatch"), std::string::npos);
  EXPECT_EQ(load_error(good), "loaded");
  ::unlink(path.c_str());
  try {
    load_archive(path);
    ADD_FAILURE() << "a missing file loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot open '" + path + "'"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace tessera
