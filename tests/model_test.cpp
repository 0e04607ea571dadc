// The MLP model's backward pass against finite differences of its own forward loss, and the
// tensor archive / optimizer plumbing around it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>

#include <unistd.h>
#include <zlib.h>

#include "host/backend/backend.h"
#include "host/core/archive.h"
#include "host/core/atomic_file.h"
#include "host/core/checked_size.h"
#include "host/core/json_fields.h"
#include "host/model/mlp.h"
#include "host/model/optimizer.h"

namespace tessera {
namespace {

struct Problem {
  Tensor dense, cat, labels;
};

Problem make_problem(int64_t b, int64_t n_dense, int64_t n_cat, int64_t rows_per_col,
                     uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> n(0.f, 1.f);
  Problem p{Tensor::host({b, n_dense}), Tensor::host({b, n_cat}, DType::I64), Tensor::host({b})};
  for (int64_t i = 0; i < b * n_dense; ++i) p.dense.data<float>()[i] = n(rng);
  for (int64_t i = 0; i < b; ++i) {
    float score = 0.f;
    for (int64_t c = 0; c < n_cat; ++c) {
      int64_t v = static_cast<int64_t>(rng() % rows_per_col);
      p.cat.data<int64_t>()[i * n_cat + c] = c * rows_per_col + v;
      score += (v % 2 ? 1.f : -1.f);
    }
    score += 2.f * p.dense.data<float>()[i * n_dense];
    p.labels.data<float>()[i] = score > 0.f ? 1.f : 0.f;
  }
  return p;
}

// Mean BCE loss of the model on the problem, and (optionally) the gradients via backward.
double loss_of(Backend& be, MlpModel& m, const Problem& p, bool with_backward) {
  const int64_t b = p.labels.numel();
  Tensor logits = m.forward(p.dense, p.cat, with_backward ? Mode::Train : Mode::Eval, 7);
  Tensor labels = be.to_device(p.labels);
  Tensor loss = be.empty({b}), dl = be.empty({b, 1});
  be.bce_with_logits(logits, labels, 1.f / b, loss, dl);
  if (with_backward) m.backward(dl);
  Tensor h = be.to_host(loss);
  double s = 0;
  for (int64_t i = 0; i < b; ++i) s += h.data<float>()[i];
  return s / b;
}

TEST(MlpModel, BackwardMatchesFiniteDifferences) {
  auto be = make_host_backend();
  MlpSpec spec;
  spec.n_dense = 3;
  spec.n_cat = 2;
  spec.embedding_rows = 10;
  spec.embedding_dim = 3;
  spec.hidden = {5, 4};
  spec.dropout = 0.f;  // dropout makes the loss non-smooth in the mask; tested at op level
  spec.activation = Activation::Tanh;  // smooth, so central differences are accurate
  MlpModel m(*be, spec, 1, 16);
  Problem p = make_problem(9, 3, 2, 5, 3);
  loss_of(*be, m, p, /*with_backward=*/true);
  int checked = 0;
  for (Parameter* prm : m.parameters()) {
    Tensor g = be->to_host(prm->grad);
    float* w = prm->value.data<float>();
    for (int64_t i = 0; i < prm->value.numel(); i += std::max<int64_t>(1, prm->value.numel() / 7)) {
      const float orig = w[i];
      const float eps = 1e-2f;
      w[i] = orig + eps;
      const double lp = loss_of(*be, m, p, false);
      w[i] = orig - eps;
      const double lm = loss_of(*be, m, p, false);
      w[i] = orig;
      const double numeric = (lp - lm) / (2 * eps);
      EXPECT_NEAR(g.data<float>()[i], numeric, 2e-3 + 2e-2 * std::fabs(numeric))
          << prm->name << "[" << i << "]";
      ++checked;
    }
  }
  EXPECT_GT(checked, 20);
}

TEST(MlpModel, AdamTrainingLearnsAPlantedSignal) {
  auto be = make_host_backend();
  MlpSpec spec;
  spec.n_dense = 4;
  spec.n_cat = 3;
  spec.embedding_rows = 30;
  spec.embedding_dim = 4;
  spec.hidden = {16, 8};
  spec.dropout = 0.1f;
  MlpModel m(*be, spec, 5, 64);
  OptimizerConfig os;
  os.lr = 1e-2;
  Optimizer opt(*be, os, LrSchedule{});
  opt.attach(m.parameters());
  Problem p = make_problem(64, 4, 3, 10, 11);
  const double before = loss_of(*be, m, p, false);
  for (int step = 0; step < 200; ++step) {
    loss_of(*be, m, p, true);
    opt.step();
  }
  const double after = loss_of(*be, m, p, false);
  EXPECT_LT(after, 0.5 * before) << "before " << before << " after " << after;
  EXPECT_LT(after, 0.2);
}

TEST(LrSchedule, WarmupCosineAndStep) {
  LrSchedule s;
  s.type = LrScheduleType::Cosine;
  s.warmup_steps = 10;
  s.total_steps = 110;
  EXPECT_FLOAT_EQ(s.lr_at(1.f, 0), 0.1f);
  EXPECT_FLOAT_EQ(s.lr_at(1.f, 9), 1.f);
  EXPECT_NEAR(s.lr_at(1.f, 60), 0.5f, 1e-6);
  EXPECT_NEAR(s.lr_at(1.f, 110), 0.f, 1e-6);
  LrSchedule st;
  st.type = LrScheduleType::Step;
  st.step_every = 5;
  st.gamma = 0.5f;
  EXPECT_FLOAT_EQ(st.lr_at(2.f, 4), 2.f);
  EXPECT_FLOAT_EQ(st.lr_at(2.f, 5), 1.f);
  EXPECT_FLOAT_EQ(st.lr_at(2.f, 12), 0.5f);
}

// Keyed by pid: ctest runs each test in its own process, two at a time, and tests writing one
// fixed name raced each other (a hostile archive read back while another test rewrote it).
std::string temp_path(const char* name) {
  return std::string(::testing::TempDir()) + "/" + std::to_string(::getpid()) + "." + name;
}

TEST(Archive, RoundTripsTensorsAndMeta) {
  const std::string path = temp_path("archive_roundtrip.tsm");
  Tensor a = Tensor::host_from<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = Tensor::host_from<int64_t>({3}, {7, -8, 1LL << 40});
  save_archive(path, R"({"kind":"test","n":3})", {{"a", a}, {"b", b}});
  Archive r = load_archive(path);
  EXPECT_EQ(r.meta_json, R"({"kind":"test","n":3})");
  ASSERT_EQ(r.tensors.count("a"), 1u);
  EXPECT_EQ(r.tensors.at("a").shape(), (Shape{2, 3}));
  EXPECT_EQ(r.tensors.at("a").data<float>()[5], 6.f);
  EXPECT_EQ(r.tensors.at("b").data<int64_t>()[2], 1LL << 40);
}

TEST(Archive, CorruptionAndTruncationAreDetected) {
  const std::string path = temp_path("archive_corrupt.tsm");
  save_archive(path, "{}", {{"a", Tensor::host_from<float>({4}, {1, 2, 3, 4})}});
  std::string bytes = read_file(path);
  std::string flipped = bytes;
  flipped[flipped.size() / 2] ^= 0x40;
  write_file_atomic(path, flipped);
  try {
    load_archive(path);
    FAIL() << "corruption not detected";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("checksum"), std::string::npos) << e.what();
  }
  write_file_atomic(path, bytes.substr(0, bytes.size() - 9));
  EXPECT_THROW(load_archive(path), Error);
}

// A tessera file with the given header JSON and data bytes and a correct CRC, as a hostile
// writer would make it: only the checksum is right.
std::string raw_archive(const std::string& header, const std::string& data = "",
                        uint64_t header_bytes = UINT64_MAX) {
  std::string out = "TESSERA1";
  const uint64_t hb = header_bytes == UINT64_MAX ? header.size() : header_bytes;
  out.append(reinterpret_cast<const char*>(&hb), 8);
  out += header;
  out += data;
  const uint32_t crc = static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(out.data()), static_cast<uInt>(out.size())));
  out.append(reinterpret_cast<const char*>(&crc), 4);
  return out;
}

// The Io error load_archive raises for `bytes`, or "" when it raised none.
std::string archive_error(const std::string& bytes) {
  const std::string path = temp_path("archive_hostile.tsm");
  write_file_atomic(path, bytes);
  try {
    load_archive(path);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Io) << e.what();
    return e.what();
  }
  return "";
}

std::string one_tensor(const std::string& fields) {
  return R"({"meta":{},"tensors":[{)" + fields + "}]}";
}

// Every partial product fits in int64_t, as shape_numel() multiplies: 2^62 x 3 fits in 64
// unsigned bits, so [2^62, 3, 0] passed (its product is 0) and shape_numel() then overflowed a
// signed integer (found by fuzz_remote_shard in a tensor of a shard message).
TEST(CheckedSize, PartialProductsStayWithinInt64) {
  EXPECT_EQ(checked_product({int64_t{1} << 62, 3, 0}), std::nullopt);
  EXPECT_EQ(checked_product({0, int64_t{1} << 62, 3}), std::optional<uint64_t>(0));
  EXPECT_EQ(checked_product({int64_t{1} << 31, int64_t{1} << 31}),
            std::optional<uint64_t>(uint64_t{1} << 62));
  EXPECT_EQ(checked_product({int64_t{1} << 62, 2}), std::nullopt);
  EXPECT_EQ(checked_product({3, -1}), std::nullopt);
  EXPECT_EQ(checked_mul(uint64_t{1} << 63, 2), std::nullopt);
  EXPECT_EQ(checked_mul(uint64_t{1} << 62, 3), std::optional<uint64_t>(uint64_t{3} << 62));
}

// Host tensors are sized in checked arithmetic: 2^31 x 2^31 x 2^31 wrapped round to a 0-byte
// buffer behind a tensor that claimed 2^93 elements.
TEST(Tensor, HostSizesThatOverflowAreRefused) {
  EXPECT_THROW(Tensor::host({int64_t{1} << 31, int64_t{1} << 31, int64_t{1} << 31}), Error);
  EXPECT_THROW(Tensor::host({int64_t{1} << 62}, DType::I64), Error);
  EXPECT_THROW(Tensor::host({-1, 4}), Error);
  EXPECT_EQ(Tensor::host({0, int64_t{1} << 62}).bytes(), 0u);
}

TEST(Archive, Crc32OfAnySizeIsTakenInPiecesThatAgreeWithOneShot) {
  std::string bytes(10007, '\0');
  std::mt19937 rng(5);
  for (char& c : bytes) c = static_cast<char>(rng());
  const uint32_t one_shot = static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
  for (size_t chunk : {size_t{1}, size_t{7}, size_t{4096}, size_t{10007}, size_t{1} << 30})
    EXPECT_EQ(crc32_of(bytes.data(), bytes.size(), chunk), one_shot) << "chunk " << chunk;
  EXPECT_EQ(crc32_of(bytes.data(), 0, 7), 0u);
}

TEST(Archive, HeaderLengthPastTheFileIsRefusedWithoutWrapping) {
  const std::string header = R"({"meta":{},"tensors":[]})";
  // 16 + length wraps round to 8: the old check let it through and parsed past the buffer.
  EXPECT_NE(archive_error(raw_archive(header, "", UINT64_MAX - 7)).find("header length"),
            std::string::npos);
  EXPECT_NE(archive_error(raw_archive(header, "", header.size() + 1)).find("header length"),
            std::string::npos);
  EXPECT_EQ(archive_error(raw_archive(header)), "");
}

TEST(Archive, ShapesAreMultipliedInCheckedArithmeticBeforeAllocation) {
  // 2^31 x 2^31 f32 is 2^64 bytes: wrapped to 0, it matched "bytes":0 and came back as a tensor
  // claiming 2^62 elements over an empty buffer.
  std::string e = archive_error(raw_archive(one_tensor(
      R"("name":"w","dtype":"f32","shape":[2147483648,2147483648],"offset":0,"bytes":0)")));
  EXPECT_NE(e.find("tensor 'w' of shape [2147483648, 2147483648]"), std::string::npos) << e;
  // A huge shape whose byte count is stated honestly is out of range of the bytes present.
  e = archive_error(raw_archive(one_tensor(
      R"("name":"w","dtype":"f32","shape":[1048576,1048576],"offset":0,"bytes":4398046511104)")));
  EXPECT_NE(e.find("out of range"), std::string::npos) << e;
  e = archive_error(raw_archive(
      one_tensor(R"("name":"w","dtype":"f32","shape":[2],"offset":18446744073709551615,"bytes":8)"),
      std::string(8, '\0')));
  EXPECT_NE(e.find("out of range"), std::string::npos) << e;
}

TEST(Archive, HeaderFieldsOfTheWrongTypeAreIoErrorsNamingTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {R"("name":3,"dtype":"f32","shape":[1],"offset":0,"bytes":4)", "tensors[0].name"},
      {R"("name":"w","dtype":7,"shape":[1],"offset":0,"bytes":4)", "tensors[0].dtype"},
      {R"("name":"w","dtype":"f64","shape":[1],"offset":0,"bytes":8)", "tensors[0].dtype"},
      {R"("name":"w","dtype":"f32","shape":"1","offset":0,"bytes":4)", "tensors[0].shape"},
      {R"("name":"w","dtype":"f32","shape":[-1],"offset":0,"bytes":4)", "tensors[0].shape"},
      {R"("name":"w","dtype":"f32","shape":[1.5],"offset":0,"bytes":4)", "tensors[0].shape"},
      {R"("name":"w","dtype":"f32","shape":[1],"offset":"0","bytes":4)", "tensors[0].offset"},
      {R"("name":"w","dtype":"f32","shape":[1],"offset":-64,"bytes":4)", "tensors[0].offset"},
      {R"("name":"w","dtype":"f32","shape":[1],"offset":0,"bytes":null)", "tensors[0].bytes"},
      {R"("name":"w","dtype":"f32","shape":[1],"offset":0)", "tensors[0].bytes"},
  };
  for (const auto& [fields, field] : cases) {
    const std::string e = archive_error(raw_archive(one_tensor(fields), std::string(8, '\0')));
    EXPECT_NE(e.find(std::string("'") + field + "'"), std::string::npos) << fields << ": " << e;
  }
  EXPECT_NE(archive_error(raw_archive(R"({"meta":{},"tensors":{}})")).find("'tensors'"),
            std::string::npos);
  EXPECT_NE(archive_error(raw_archive(R"({"tensors":[]})")).find("'meta'"), std::string::npos);
  EXPECT_NE(archive_error(raw_archive(R"({"meta":{},"tensors":[7]})")).find("'tensors[0]'"),
            std::string::npos);
}

TEST(Archive, RepeatedOrOverlappingTensorsAndDeepNestingAreRefused) {
  const std::string w = R"({"name":"w","dtype":"f32","shape":[1],"offset":0,"bytes":4})";
  EXPECT_NE(archive_error(
                raw_archive(R"({"meta":{},"tensors":[)" + w + "," + w + "]}", std::string(4, '\0')))
                .find("appears twice"),
            std::string::npos);
  // Two tensors over the same bytes: a small file could ask for many copies of its data.
  const std::string v = R"({"name":"v","dtype":"f32","shape":[1],"offset":0,"bytes":4})";
  EXPECT_NE(archive_error(
                raw_archive(R"({"meta":{},"tensors":[)" + w + "," + v + "]}", std::string(4, '\0')))
                .find("overlaps"),
            std::string::npos);
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_NE(archive_error(raw_archive(R"({"meta":)" + deep + R"(,"tensors":[]})")).find("nests"),
            std::string::npos);
  const std::string ok =
      std::string(kJsonMaxNesting - 1, '[') + std::string(kJsonMaxNesting - 1, ']');
  EXPECT_EQ(archive_error(raw_archive(R"({"meta":)" + ok + R"(,"tensors":[]})")), "");
}

TEST(AtomicFile, UnwritableDirectoryIsAClearErrorAndLeavesNothing) {
  try {
    write_file_atomic("/nonexistent-dir-tessera/x.bin", "abc");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Io);
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir-tessera/x.bin"), std::string::npos);
  }
}

TEST(AtomicFile, AbandonedWriterLeavesTheOldFileIntact) {
  const std::string path = temp_path("atomic_keep.txt");
  write_file_atomic(path, "old");
  {
    AtomicFileWriter w(path);
    w.write("new but never committed");
  }
  EXPECT_EQ(read_file(path), "old");
  std::FILE* f = std::fopen((path + ".tmp." + std::to_string(::getpid())).c_str(), "r");
  EXPECT_EQ(f, nullptr);
  if (f) std::fclose(f);
}

}  // namespace
}  // namespace tessera
