// tessera export round trips: .npy read back by numpy (when python3 has it), safetensors parsed
// here, word2vec text parsed back to the same floats, and a FAISS index whose top-K equals brute
// force (when built with FAISS; a clear error otherwise).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <numeric>
#include <sstream>

#include <rapidjson/document.h>

#include "data_test_util.h"
#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "pipelines/recommend/export.h"
#include "pipelines/recommend/export_faiss.h"
#include "pipelines/recommend/rec_artefact.h"
#include "tests/support/skips.h"

namespace tessera::recommend {
namespace {

using tessera::testing::TempDir;
using tessera::testing::write_file;

// A small trained model (mf: all four tables), shared by the tests.
class RecommendExport : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    // Recorded, and failed in SetUp: a failure here would show up in ctest as skipped tests.
    setup_error_ = test::suite_setup_error(train_once);
  }
  static void train_once() {
    std::ostringstream s;
    s << "userId,movieId,rating,timestamp\n";
    for (int u = 0; u < 40; ++u)
      for (int i = 0; i < 50; ++i)
        if ((u * 7 + i * 3) % 5 < 2)
          s << (1000 + u) << "," << (10 * i + 3) << "," << 1 + (u + i) % 5 << "," << i << "\n";
    const std::string ratings = write_file(dir_->file("r.csv"), s.str());
    const std::string cfg = write_file(
        dir_->file("c.json"),
        R"({"task": "recommend", "model": "mf", "data": {"path": ")" + ratings +
            R"("}, "embeddings": {"dim": 6}, "train": {"epochs": 2, "batch_size": 64}})");
    TrainOptions o;
    o.run_dir = dir_->file("run");
    o.quiet = true;
    train(cfg, o);
    model_ = new RecArtefact(load_rec_artefact(dir_->file("run/model.tsm")));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete dir_;
  }
  static std::string model_path() { return dir_->file("run/model.tsm"); }
  static const std::vector<int64_t>& ids_of(const std::string& table) {
    return table.rfind("user", 0) == 0 ? model_->user_ids : model_->item_ids;
  }
  void SetUp() override {
    ASSERT_TRUE(setup_error_.empty()) << "training the model failed: " << setup_error_;
    ASSERT_NE(model_, nullptr);
  }
  static TempDir* dir_;
  static RecArtefact* model_;
  static std::string setup_error_;
};
TempDir* RecommendExport::dir_ = nullptr;
RecArtefact* RecommendExport::model_ = nullptr;
std::string RecommendExport::setup_error_;

TEST_F(RecommendExport, NpyFilesReadBackWithNumpy) {
  const std::string out = dir_->file("npy");
  export_model(model_path(), ExportFormat::Npy, out);
  // Our own reading of the header first (always runs).
  const std::string bytes = read_file(out + "/item.npy");
  ASSERT_EQ(bytes.substr(0, 6), "\x93NUMPY");
  EXPECT_NE(bytes.find("'shape': (" + std::to_string(model_->item_ids.size()) + ", 6)"),
            std::string::npos);
  std::string py;
  if (const std::string missing = test::missing_numpy(&py); !missing.empty())
    TESSERA_SKIP_OR_FAIL(missing + ": the numpy round trip needs it");
  // One python run: numpy loads each pair and writes their raw bytes back with the shape it saw.
  // The folder and the table names are arguments, never part of the program text.
  const char* script = R"(import sys
import numpy as np
out = sys.argv[1]
for n in sys.argv[2:]:
    a = np.load(out + '/' + n + '.npy')
    i = np.load(out + '/' + n + '_ids.npy')
    assert a.dtype == np.float32 and i.dtype == np.int64
    open(out + '/' + n + '.raw', 'wb').write(a.tobytes() + i.tobytes())
    open(out + '/' + n + '.shape', 'w').write('%d %d %d' % (a.shape[0], a.shape[1], i.shape[0]))
)";
  std::vector<std::string> argv = {py, "-c", script, out};
  for (const auto& [name, t] : model_->tables) argv.push_back(name);
  const test::ProgramResult ran = test::run_program(argv);
  ASSERT_EQ(ran.status, 0) << ran.out << ran.err;
  for (const auto& [name, t] : model_->tables) {
    std::ifstream sh(out + "/" + name + ".shape");
    int64_t r = 0, d = 0, n = 0;
    sh >> r >> d >> n;
    EXPECT_EQ(r, t.dim(0));
    EXPECT_EQ(d, t.dim(1));
    EXPECT_EQ(n, t.dim(0));
    const std::string raw = read_file(out + "/" + name + ".raw");
    const auto& ids = ids_of(name);
    ASSERT_EQ(raw.size(), t.bytes() + ids.size() * 8);
    EXPECT_EQ(std::memcmp(raw.data(), t.raw(), t.bytes()), 0) << name;
    EXPECT_EQ(std::memcmp(raw.data() + t.bytes(), ids.data(), ids.size() * 8), 0) << name;
  }
}

TEST_F(RecommendExport, SafetensorsHeaderAndBytes) {
  const std::string out = dir_->file("st");
  export_model(model_path(), ExportFormat::Safetensors, out);
  const std::string bytes = read_file(out + "/embeddings.safetensors");
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  ASSERT_EQ(n % 8, 0u);
  rapidjson::Document h;
  h.Parse(bytes.substr(8, n).c_str());
  ASSERT_FALSE(h.HasParseError());
  const size_t data0 = 8 + n;
  for (const auto& [name, t] : model_->tables) {
    ASSERT_TRUE(h.HasMember(name.c_str())) << name;
    const auto& e = h[name.c_str()];
    EXPECT_STREQ(e["dtype"].GetString(), "F32");
    EXPECT_EQ(e["shape"][0].GetInt64(), t.dim(0));
    EXPECT_EQ(e["shape"][1].GetInt64(), t.dim(1));
    const uint64_t b = e["data_offsets"][0].GetUint64(), end = e["data_offsets"][1].GetUint64();
    ASSERT_EQ(end - b, t.bytes());
    EXPECT_EQ(std::memcmp(bytes.data() + data0 + b, t.raw(), t.bytes()), 0) << name;
    const auto& ie = h[(name + "_ids").c_str()];
    EXPECT_STREQ(ie["dtype"].GetString(), "I64");
    const auto& ids = ids_of(name);
    EXPECT_EQ(std::memcmp(bytes.data() + data0 + ie["data_offsets"][0].GetUint64(), ids.data(),
                          ids.size() * 8),
              0);
  }
}

TEST_F(RecommendExport, Word2vecTextParsesBackToTheSameFloats) {
  const std::string out = dir_->file("w2v");
  export_model(model_path(), ExportFormat::Word2vec, out);
  for (const auto& [name, t] : model_->tables) {
    std::ifstream in(out + "/" + name + ".txt");
    int64_t rows = 0, dim = 0;
    in >> rows >> dim;
    ASSERT_EQ(rows, t.dim(0));
    ASSERT_EQ(dim, t.dim(1));
    const auto& ids = ids_of(name);
    for (int64_t r = 0; r < rows; ++r) {
      int64_t id = 0;
      in >> id;
      ASSERT_EQ(id, ids[r]);
      for (int64_t k = 0; k < dim; ++k) {
        double v = 0;
        in >> v;
        ASSERT_EQ(static_cast<float>(v), t.data<float>()[r * dim + k]) << name << " row " << r;
      }
    }
  }
}

#if TESSERA_HAVE_FAISS
TEST_F(RecommendExport, FaissTopKEqualsBruteForce) {
  const std::string out = dir_->file("faiss");
  ASSERT_TRUE(faiss_available());
  export_model(model_path(), ExportFormat::Faiss, out);
  const Tensor* users = nullptr;
  const Tensor* items = nullptr;
  for (const auto& [name, t] : model_->tables) {
    if (name == "user") users = &t;
    if (name == "item") items = &t;
  }
  ASSERT_TRUE(users && items);
  const int64_t U = users->dim(0), I = items->dim(0), d = users->dim(1), k = 10;
  const std::vector<int64_t> got = faiss_search(out + "/item.faiss", users->data<float>(), U, d, k);
  const float* p = users->data<float>();
  const float* q = items->data<float>();
  for (int64_t u = 0; u < U; ++u) {
    std::vector<double> s(static_cast<size_t>(I));
    for (int64_t i = 0; i < I; ++i) {
      s[i] = 0;
      for (int64_t c = 0; c < d; ++c) s[i] += static_cast<double>(p[u * d + c]) * q[i * d + c];
    }
    std::vector<int64_t> order(static_cast<size_t>(I));
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [&](int64_t a, int64_t b) { return s[a] > s[b]; });
    for (int64_t r = 0; r < k; ++r) {
      const int64_t want = model_->item_ids[order[r]];
      const int64_t have = got[u * k + r];
      if (want == have) continue;
      // Only a near-tie (float vs double summation) may swap neighbours.
      const auto pos = std::find(model_->item_ids.begin(), model_->item_ids.end(), have) -
                       model_->item_ids.begin();
      ASSERT_LT(pos, I) << "faiss returned unknown id " << have;
      EXPECT_NEAR(s[pos], s[order[r]], 1e-5) << "user row " << u << " rank " << r;
    }
  }
}
#else
// A build without FAISS (libfaiss-dev) has no top-k check to run: the export says which package
// it needs instead, and CI (TESSERA_REQUIRE_DATA=1), which must run the FAISS check, fails.
TEST_F(RecommendExport, FaissExportWithoutFaissNamesThePackage) {
  EXPECT_FALSE(faiss_available());
  try {
    export_model(model_path(), ExportFormat::Faiss, dir_->file("faiss"));
    FAIL() << "faiss export succeeded without FAISS";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Usage);
    EXPECT_NE(std::string(e.what()).find("libfaiss-dev"), std::string::npos);
  }
  if (test::data_required())
    ADD_FAILURE() << test::require_data_failure(
        "built without FAISS (libfaiss-dev), so the FAISS "
        "top-k check is not compiled in");
}
#endif  // TESSERA_HAVE_FAISS

TEST_F(RecommendExport, UnknownFormatListsTheChoices) {
  try {
    parse_export_format("parquet");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Usage);
    EXPECT_NE(std::string(e.what()).find("\"npy\", \"safetensors\", \"word2vec\", \"faiss\""),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace tessera::recommend
