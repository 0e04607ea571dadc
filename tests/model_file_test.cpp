// Model files as hostile input: every task's loader type-checks the header by field (an Io error
// naming it) and checks the sizes the header implies against the weights the file holds before a
// model is built from them. Each case starts from a real model written by the product (a tiny
// training run) and rewrites its header with the product's own archive writer, so only the
// change under test is wrong.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "host/backend/backend.h"
#include "host/core/archive.h"
#include "host/core/atomic_file.h"
#include "host/core/json_fields.h"
#include "pipelines/audio/audio.h"
#include "pipelines/behaviour/behaviour.h"
#include "pipelines/behaviour/dlrm_model.h"
#include "pipelines/behaviour/model_artefact.h"
#include "pipelines/behaviour/net.h"
#include "pipelines/image/cnn_task.h"
#include "pipelines/image/image.h"
#include "pipelines/recommend/rec_artefact.h"
#include "pipelines/recommend/recommend.h"
#include "pipelines/textclass/textclass.h"
#include "pipelines/textgen/textgen.h"
#include "tests/data_test_util.h"

namespace tessera {
namespace {

// The model file `from` with its header changed by `edit` (and its tensors by `tensors`),
// written to `to` with save_archive.
void rewrite(const std::string& from, const std::string& to,
             const std::function<void(rapidjson::Document&)>& edit,
             const std::function<void(std::map<std::string, Tensor>&)>& tensors = {}) {
  Archive a = load_archive(from);
  rapidjson::Document d;
  d.Parse(a.meta_json.c_str());
  ASSERT_TRUE(d.IsObject());
  edit(d);
  if (tensors) tensors(a.tensors);
  save_archive(to, json_text(d), {a.tensors.begin(), a.tensors.end()});
}

// The Io error `load` raises, or "" when it raised none.
std::string io_error_of(const std::function<void()>& load) {
  try {
    load();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Io) << e.what();
    return e.what();
  }
  return "";
}

// Sets the member at `path` ("spec.hidden") to the JSON `value`.
void set(rapidjson::Document& d, const std::string& path, const std::string& value) {
  rapidjson::Value* v = &d;
  size_t at = 0;
  while (true) {
    const size_t dot = path.find('.', at);
    const std::string key = path.substr(at, dot - at);
    ASSERT_TRUE(v->IsObject() && v->HasMember(key.c_str())) << path;
    v = &(*v)[key.c_str()];
    if (dot == std::string::npos) break;
    at = dot + 1;
  }
  rapidjson::Document n(&d.GetAllocator());
  n.Parse(value.c_str());
  ASSERT_FALSE(n.HasParseError()) << value;
  v->CopyFrom(n, d.GetAllocator());
}

// ---- behaviour -----------------------------------------------------------------------------

// A tiny behaviour model of `type` ("mlp" or "dlrm") trained for one epoch; returns its path.
std::string behaviour_model(testing::TempDir& dir, const std::string& type) {
  std::string csv;
  for (int i = 0; i < 64; ++i)
    csv += std::to_string(i % 7) + "," + std::string(1, char('a' + i % 3)) + "," +
           std::string(1, char('p' + i % 2)) + "," + (i % 2 ? "yes" : "no") + "\n";
  write_file_atomic(dir.file("train.csv"), csv);
  write_file_atomic(dir.file(type + ".json"), R"({"task": "behaviour", "name": "tiny",
    "data": {"train": ")" + dir.file("train.csv") +
                                                  R"(", "format": "csv", "columns": [
      {"name": "x", "type": "numeric"}, {"name": "c", "type": "categorical"},
      {"name": "d", "type": "categorical"},
      {"name": "y", "type": "label", "positive": ["yes"], "negative": ["no"]}]},
    "model": {"type": ")" + type + R"(", "embedding_dim": 2, "hidden": [3], "dropout": 0},
    "train": {"epochs": 1, "batch_size": 16}})");
  behaviour::TrainOptions o;
  o.quiet = true;
  o.device = "cpu";
  o.run_dir = dir.file("run-" + type);
  behaviour::train(dir.file(type + ".json"), o);
  return o.run_dir + "/model.tsm";
}

// What evaluate and predict do with a model file before they read data.
void load_and_build(const std::string& path) {
  behaviour::ModelArtefact a = behaviour::load_model(path);
  auto backend = make_backend("cpu");
  auto net = behaviour::make_net(*backend, a.config, a.preprocessor, a.spec, 0, 4);
  net->restore(a.weights);
}

TEST(BehaviourModelFile, EveryWeightTheHeaderImpliesIsCheckedBeforeTheModelIsBuilt) {
  testing::TempDir dir;
  for (const std::string type : {"mlp", "dlrm"}) {
    SCOPED_TRACE(type);
    const std::string good = behaviour_model(dir, type);
    EXPECT_EQ(io_error_of([&] { load_and_build(good); }), "");
    const std::string bad = dir.file("bad-" + type + ".tsm");
    auto error_with = [&](const std::string& path, const std::string& value) {
      rewrite(good, bad, [&](rapidjson::Document& d) { set(d, path, value); });
      return io_error_of([&] { load_and_build(bad); });
    };
    // Wrong types: RapidJSON's unchecked accessors read them as garbage.
    const std::pair<const char*, const char*> wrong_types[] = {{"spec.n_dense", R"("3")"},
                                                               {"spec.hidden", R"("x")"},
                                                               {"spec.dropout", "[]"},
                                                               {"version", R"("1")"},
                                                               {"task", "5"},
                                                               {"format", "{}"}};
    for (const auto& [path, value] : wrong_types) {
      const std::string e = error_with(path, value);
      EXPECT_NE(e.find(std::string(path) + " is not"), std::string::npos) << path << ": " << e;
    }
    EXPECT_NE(error_with("spec.hidden", "[3, -1]").find("spec.hidden[1]"), std::string::npos);
    EXPECT_NE(error_with("spec.activation", "9").find("spec.activation"), std::string::npos);
    // Sizes beyond the weights stored: 2^40 embedding rows were allocated before any check.
    std::string e = error_with("spec.embedding_rows", "1099511627776");
    EXPECT_NE(e.find("against the preprocessor's"), std::string::npos) << e;
    e = error_with(type == "mlp" ? "spec.hidden" : "config.model.hidden", "[65536]");
    EXPECT_NE(e.find("the header implies f32"), std::string::npos) << e;
    // A hashed column of 2^62 buckets: the tables were sized from it.
    e = error_with("preprocessor.categorical", R"([{"name": "c", "field": 1, "min_count": 1,
        "hash_buckets": 4611686018427387904, "offset": 0, "size": 4611686018427387904,
        "tokens": [], "counts": []}])");
    EXPECT_NE(e.find("hash_buckets"), std::string::npos) << e;
    // A weight of another dtype reached the backend's copy.
    rewrite(
        good, bad, [](rapidjson::Document&) {},
        [](std::map<std::string, Tensor>& t) {
          const std::string name = t.count("dense0.bias") ? "dense0.bias" : "top0.bias";
          t[name] = Tensor::host(t[name].shape(), DType::I32);
        });
    e = io_error_of([&] { load_and_build(bad); });
    EXPECT_NE(e.find("bias' is i32"), std::string::npos) << e;
  }
}

// ---- recommendation ------------------------------------------------------------------------

std::string recommend_model(testing::TempDir& dir, const std::string& model) {
  std::string csv = "userId,movieId,rating,timestamp\n";
  for (int u = 1; u <= 12; ++u)
    for (int i = 1; i <= 9; ++i)
      if ((u + i) % 3 != 0) csv += std::to_string(u) + "," + std::to_string(i) + ",4,1000\n";
  write_file_atomic(dir.file("ratings.csv"), csv);
  write_file_atomic(dir.file(model + ".json"), R"({"task": "recommend", "name": "tiny",
    "model": ")" + model + R"(", "data": {"path": ")" +
                                                   dir.file("ratings.csv") + R"("},
    "embeddings": {"dim": 4}, "train": {"epochs": 1, "batch_size": 16}})");
  recommend::TrainOptions o;
  o.quiet = true;
  o.device = "cpu";
  o.run_dir = dir.file("run-" + model);
  recommend::train(dir.file(model + ".json"), o);
  return o.run_dir + "/model.tsm";
}

TEST(RecommendModelFile, TablesIdsAndSeenListsMustAgreeBeforeAnythingIndexesThem) {
  testing::TempDir dir;
  const std::string good = recommend_model(dir, "mf");
  const recommend::RecArtefact a = recommend::load_rec_artefact(good);
  EXPECT_EQ(io_error_of([&] { recommend::recommend(good, dir.file("top.csv"), {}); }), "");
  const std::string bad = dir.file("bad.tsm");
  auto error_with = [&](const std::function<void(rapidjson::Document&)>& edit,
                        const std::function<void(std::map<std::string, Tensor>&)>& tensors) {
    rewrite(good, bad, edit, tensors);
    return io_error_of([&] { recommend::recommend(bad, dir.file("top.csv"), {}); });
  };
  auto header = [&](const std::string& path, const std::string& value) {
    return error_with([&](rapidjson::Document& d) { set(d, path, value); }, {});
  };
  auto tensor = [&](const std::string& name, const Tensor& t) {
    return error_with([](rapidjson::Document&) {},
                      [&](std::map<std::string, Tensor>& ts) { ts[name] = t; });
  };
  EXPECT_NE(header("model", R"("wide")").find("model is not a known model"), std::string::npos);
  EXPECT_NE(header("global_mean", R"("4")").find("global_mean is not"), std::string::npos);
  EXPECT_NE(header("tables", R"(["user", 3])").find("tables[1] is not a string"),
            std::string::npos);
  const int64_t U = static_cast<int64_t>(a.user_ids.size());
  const int64_t I = static_cast<int64_t>(a.item_ids.size());
  // Fewer ids than table rows: recommend read a.user_ids[u] past its end.
  std::string e = tensor("user_ids", Tensor::host({U - 1}, DType::I64));
  EXPECT_NE(e.find("tensors disagree"), std::string::npos) << e;
  // A seen item outside the items, or seen lists that run backwards: read out of range.
  Tensor seen = Tensor::host({static_cast<int64_t>(a.seen.items.size())}, DType::I32);
  std::copy(a.seen.items.begin(), a.seen.items.end(), seen.data<int32_t>());
  seen.data<int32_t>()[0] = static_cast<int32_t>(I + 5);
  e = tensor("seen_items", seen);
  EXPECT_NE(e.find("seen items are not ascending item indices"), std::string::npos) << e;
  Tensor offsets = Tensor::host({U + 1}, DType::I64);
  for (int64_t u = 0; u <= U; ++u) offsets.data<int64_t>()[u] = a.seen.offsets[U - u];
  e = tensor("seen_offsets", offsets);
  EXPECT_NE(e.find("seen_offsets"), std::string::npos) << e;
  // A table of another dtype or rank (Scorer read dim(1) of a vector: std::out_of_range).
  e = tensor("table/item", Tensor::host({I * 4}));
  EXPECT_NE(e.find("'table/item' is f32[" + std::to_string(I * 4)), std::string::npos) << e;
  e = tensor("user_ids", Tensor::host({U}, DType::I32));
  EXPECT_NE(e.find("'user_ids' is i32"), std::string::npos) << e;
}

TEST(RecommendCheckpoint, HeaderFieldsAndStateAreCheckedByName) {
  testing::TempDir dir;
  recommend_model(dir, "mf");
  const std::string run = dir.file("run-mf"), ck = run + "/checkpoint.tsc";
  const std::string saved = dir.file("checkpoint.tsc");
  std::filesystem::copy_file(ck, saved);
  auto resume = [&] {
    recommend::TrainOptions o;
    o.quiet = true;
    o.device = "cpu";
    o.resume = run;
    o.epochs = 2;
    recommend::train(dir.file("mf.json"), o);
  };
  auto error_with = [&](const std::function<void(rapidjson::Document&)>& edit,
                        const std::function<void(std::map<std::string, Tensor>&)>& tensors) {
    rewrite(saved, ck, edit, tensors);
    return io_error_of(resume);
  };
  auto header = [&](const std::string& path, const std::string& value) {
    return error_with([&](rapidjson::Document& d) { set(d, path, value); }, {});
  };
  // The Trainer's checkpoint (host/train/checkpoint.h): RapidJSON read a tag of another type as
  // garbage, and the step as an integer.
  EXPECT_NE(header("tag", "7").find("tag is not a string"), std::string::npos);
  EXPECT_NE(header("step", R"("3")").find("step is not an integer"), std::string::npos);
  EXPECT_NE(header("epochs_done", "-1").find("epochs_done is not an integer"), std::string::npos);
  EXPECT_NE(header("task", R"("textgen")").find("a textgen checkpoint, not recommend"),
            std::string::npos);
  // A global mean of another dtype was a failed internal check, not the file's fault.
  const std::string e = error_with([](rapidjson::Document&) {},
                                   [](std::map<std::string, Tensor>& t) {
                                     t["state/global_mean"] = Tensor::host({1}, DType::I32);
                                   });
  EXPECT_NE(e.find("global_mean is i32"), std::string::npos) << e;
  rewrite(saved, ck, [](rapidjson::Document&) {});
  EXPECT_EQ(io_error_of(resume), "");
}

// ---- image ---------------------------------------------------------------------------------

std::string image_model(testing::TempDir& dir) {
  std::string csv;
  for (int i = 0; i < 40; ++i) {
    for (int p = 0; p < 64; ++p) csv += std::to_string((p % 8 < 4) == (i % 2 == 0) ? 12 : 1) + ",";
    csv += std::to_string(i % 2) + "\n";
  }
  write_file_atomic(dir.file("digits.csv"), csv);
  write_file_atomic(dir.file("image.json"), R"({"task": "image", "name": "tiny", "device": "cpu",
    "data": {"format": "digits_csv", "train": ")" +
                                                dir.file("digits.csv") + R"(",
             "test_fraction": 0.2, "validation_fraction": 0.2, "classes": 10},
    "model": {"layers": [{"type": "conv", "filters": 2, "kernel": 3, "padding": 1},
                         {"type": "batchnorm"}, {"type": "relu"}, {"type": "flatten"}]},
    "train": {"epochs": 1, "batch_size": 8}})");
  image::TrainOptions o;
  o.quiet = true;
  o.run_dir = dir.file("run-image");
  image::train(dir.file("image.json"), o);
  return o.run_dir + "/model.tsm";
}

TEST(ImageModelFile, TheLayersHeaderIsCheckedAgainstTheStoredTensorsBeforeBuilding) {
  testing::TempDir dir;
  const std::string good = image_model(dir);
  auto load_and_build = [](const std::string& path) {
    const image::LoadedModel m = image::load_model(path, "image");
    image::instantiate(m, "cpu", 2);
  };
  EXPECT_EQ(io_error_of([&] { load_and_build(good); }), "");
  const std::string bad = dir.file("bad.tsm");
  auto error_with = [&](const std::string& path, const std::string& value) {
    rewrite(good, bad, [&](rapidjson::Document& d) { set(d, path, value); });
    return io_error_of([&] { load_and_build(bad); });
  };
  // An input of 8 x 2^20 x 2^20: its buffers were allocated before the weights were compared.
  std::string e = error_with("input", "[8, 1048576, 1048576]");
  EXPECT_NE(e.find("values per sample"), std::string::npos) << e;
  // 10^6 classes: as many class names were made before any check.
  e = error_with("classes", "1000000");
  EXPECT_NE(e.find("classes is not an integer in [2, 100000]"), std::string::npos) << e;
  // Wider filters than stored.
  e = error_with("layers", R"([{"type": "conv", "filters": 4096, "kernel": 3, "padding": 1},
      {"type": "batchnorm"}, {"type": "relu"}, {"type": "flatten"}])");
  EXPECT_NE(e.find("its header implies f32[4096, 1, 3, 3]"), std::string::npos) << e;
  EXPECT_NE(error_with("eval_batch_size", "1099511627776").find("eval_batch_size"),
            std::string::npos);
  EXPECT_NE(error_with("class_names", "[1, 2]").find("class_names[0] is not a string"),
            std::string::npos);
  EXPECT_NE(error_with("layers", R"([{"type": "teleport"}])").find("layers is not a valid"),
            std::string::npos);
}

TEST(ImageModelFile, StateShapesAreTheShapesTheModelBuilds) {
  auto backend = make_backend("cpu");
  CnnSpec spec;
  spec.channels = 4;
  spec.height = 9;
  spec.width = 7;
  spec.classes = 3;
  CnnLayerSpec conv, bn, relu, pool, dense, fold, tpool;
  conv.type = CnnLayerType::Conv;
  conv.units = 6;
  conv.groups = 2;
  bn.type = CnnLayerType::BatchNorm;
  relu.type = CnnLayerType::Relu;
  pool.type = CnnLayerType::MaxPool;
  pool.kernel = pool.stride = 2;
  dense.type = CnnLayerType::Dense;
  dense.units = 5;
  dense.bias = false;
  spec.layers = {conv, bn, relu, pool, dense};
  fold.type = CnnLayerType::FramesToBatch;
  tpool.type = CnnLayerType::TemporalAvgPool;
  CnnSpec frames = spec;
  frames.layers = {fold, conv, bn, tpool, dense};
  frames.layers[1].groups = 1;
  for (const CnnSpec& s : {spec, frames}) {
    CnnModel model(*backend, s, 1, 2);
    std::vector<std::pair<std::string, Shape>> built;
    for (const auto& [name, t] : model.state()) built.emplace_back(name, t->shape());
    EXPECT_EQ(CnnModel::state_shapes(s), built);
  }
}

// ---- audio ---------------------------------------------------------------------------------

// A mono 16-bit 8 kHz WAV of n samples of a tone.
void write_wav(const std::string& path, double hz, int n) {
  auto put = [](std::string& s, uint32_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) s += static_cast<char>((v >> (8 * i)) & 255);
  };
  std::string d;
  for (int i = 0; i < n; ++i)
    put(d, static_cast<uint16_t>(static_cast<int16_t>(8000 * std::sin(2 * M_PI * hz * i / 8000))),
        2);
  std::string h = "RIFF";
  put(h, static_cast<uint32_t>(36 + d.size()), 4);
  h += "WAVEfmt ";
  for (const auto& [v, bytes] :
       {std::pair{16u, 4}, {1u, 2}, {1u, 2}, {8000u, 4}, {16000u, 4}, {2u, 2}, {16u, 2}})
    put(h, v, bytes);
  h += "data";
  put(h, static_cast<uint32_t>(d.size()), 4);
  write_file_atomic(path, h + d);
}

TEST(AudioModelFile, TheFrontEndMustMakeTheInputTheModelTakes) {
  testing::TempDir dir;
  std::filesystem::create_directories(dir.file("wav"));
  for (int label = 0; label < 2; ++label)
    for (int index = 0; index < 4; ++index)
      write_wav(dir.file("wav/" + std::to_string(label) + "_spk_" + std::to_string(index) + ".wav"),
                label ? 1500 : 440, 1600);
  write_file_atomic(dir.file("audio.json"), R"({"task": "audio", "name": "tiny", "device": "cpu",
    "data": {"dir": ")" + dir.file("wav") + R"(", "test_max_index": 1, "validation_fraction": 0,
             "classes": 2},
    "features": {"sample_rate": 8000, "n_fft": 128, "win_length": 128, "hop_length": 64,
                 "n_mels": 8, "fmin": 20, "frames": 8},
    "model": {"layers": [{"type": "conv", "filters": 2, "kernel": 3, "padding": 1},
                         {"type": "relu"}, {"type": "flatten"}]},
    "train": {"epochs": 1, "batch_size": 4}})");
  audio::TrainOptions o;
  o.quiet = true;
  o.run_dir = dir.file("run");
  audio::train(dir.file("audio.json"), o);
  const std::string good = o.run_dir + "/model.tsm", bad = dir.file("bad.tsm");
  audio::Options p;
  p.device = "cpu";
  p.quiet = true;
  const std::string wav = dir.file("wav/0_spk_0.wav");
  EXPECT_EQ(io_error_of([&] { audio::predict(good, wav, p, 2); }), "");
  // A header whose front end makes 8 x 4 log-mel images for a model taking 8 x 8: predict
  // copied 64 floats out of a 32-float buffer (a heap overflow, found by fuzz_tsm); 8 x 64 images
  // were silently cut to their first 64 values.
  for (const char* frames : {"64", "4"}) {
    rewrite(good, bad, [&](rapidjson::Document& d) { set(d, "features.frames", frames); });
    const std::string e = io_error_of([&] { audio::predict(bad, wav, p, 2); });
    EXPECT_NE(e.find("log-mel images, the model takes 1 x 8 x 8"), std::string::npos) << e;
  }
}

// ---- text generation and classification -----------------------------------------------------

std::string textgen_model(testing::TempDir& dir) {
  std::string text;
  for (int i = 0; i < 60; ++i) text += "the cat sat on a mat and purred\n";
  write_file_atomic(dir.file("text.txt"), text);
  write_file_atomic(dir.file("textgen.json"), R"({"task": "textgen", "name": "tiny",
    "device": "cpu", "data": {"path": ")" + dir.file("text.txt") +
                                                  R"("},
    "model": {"embedding_dim": 4, "hidden_size": 6, "num_layers": 2},
    "train": {"epochs": 1, "batch_size": 4, "seq_len": 16}})");
  textgen::TrainOptions o;
  o.quiet = true;
  o.run_dir = dir.file("run-textgen");
  textgen::train(dir.file("textgen.json"), o);
  return o.run_dir + "/model.tsm";
}

std::string textclass_model(testing::TempDir& dir) {
  std::string tsv;
  for (int i = 0; i < 40; ++i)
    tsv += std::string(i % 2 ? "pos\tthe film was great" : "neg\tthe film was dull") + "\n";
  write_file_atomic(dir.file("reviews.tsv"), tsv);
  write_file_atomic(dir.file("textclass.json"), R"({"task": "textclass", "name": "tiny",
    "device": "cpu", "data": {"train": ")" + dir.file("reviews.tsv") +
                                                    R"(",
    "validation_fraction": 0.2, "skip_lines": 0},
    "model": {"embedding_dim": 4, "hidden_size": 4}, "train": {"epochs": 1, "batch_size": 8}})");
  textclass::TrainOptions o;
  o.quiet = true;
  o.run_dir = dir.file("run-textclass");
  textclass::train(dir.file("textclass.json"), o);
  return o.run_dir + "/model.tsm";
}

TEST(TextModelFiles, LstmSizesAreBoundedAndCheckedAgainstTheStoredWeights) {
  testing::TempDir dir;
  const std::string gen = textgen_model(dir), cls = textclass_model(dir);
  write_file_atomic(dir.file("input.txt"), "the film was great\n");
  auto generate = [&](const std::string& path) {
    textgen::GenerateOptions o;
    o.length = 3;
    textgen::generate(path, o, [](const std::string&) {});
  };
  auto classify = [&](const std::string& path) {
    textclass::predict(path, dir.file("input.txt"), dir.file("out.csv"), {});
  };
  EXPECT_EQ(io_error_of([&] { generate(gen); }), "");
  EXPECT_EQ(io_error_of([&] { classify(cls); }), "");
  for (const auto& [good, use] :
       {std::pair{gen, std::function<void(const std::string&)>(generate)},
        std::pair{cls, std::function<void(const std::string&)>(classify)}}) {
    const std::string bad = dir.file("bad.tsm");
    auto error_with = [&](const std::string& path, const std::string& value) {
      rewrite(good, bad, [&](rapidjson::Document& d) { set(d, path, value); });
      return io_error_of([&] { use(bad); });
    };
    // 2^40 layers: the LSTM's weight count looped over them (and overflowed) before any check;
    // a hidden size of 2^31 was allocated. Both were Config errors, now the file's (Io).
    EXPECT_NE(error_with("num_layers", "1099511627776").find("num_layers"), std::string::npos);
    EXPECT_NE(error_with("hidden_size", "2147483648").find("hidden_size"), std::string::npos);
    // Within bounds but not what is stored.
    const std::string e = error_with("hidden_size", "8000");
    EXPECT_NE(e.find("its header implies f32"), std::string::npos) << e;
  }
}

// ---- every task ----------------------------------------------------------------------------

// Training never saves NaN or infinity (it stops first): a model file holding one is corrupt and
// refused by name, instead of predicting NaN (which reached the JSON writer as an internal error).
TEST(ModelFiles, NonFiniteWeightsAreRefusedByName) {
  testing::TempDir dir;
  const std::pair<std::string, std::string> cases[] = {
      {behaviour_model(dir, "mlp"), "dense0.bias"},
      {recommend_model(dir, "mf"), "table/item_bias"},
      {image_model(dir), "output.dense.bias"},
      {textgen_model(dir), "out_b"},
      {textclass_model(dir), "out_b"}};
  const std::function<void(const std::string&)> loads[] = {
      [](const std::string& p) { behaviour::load_model(p); },
      [](const std::string& p) { recommend::load_rec_artefact(p); },
      [](const std::string& p) { image::load_model(p, "image"); },
      [&](const std::string& p) {
        textgen::GenerateOptions o;
        o.length = 1;
        textgen::generate(p, o, [](const std::string&) {});
      },
      [&](const std::string& p) {
        write_file_atomic(dir.file("line.txt"), "the film\n");
        textclass::predict(p, dir.file("line.txt"), dir.file("out.csv"), {});
      }};
  for (size_t i = 0; i < std::size(cases); ++i) {
    const auto& [good, tensor] = cases[i];
    for (const float bad : {NAN, INFINITY}) {
      rewrite(
          good, dir.file("bad.tsm"), [](rapidjson::Document&) {},
          [&](std::map<std::string, Tensor>& t) {
            ASSERT_EQ(t.count(tensor), 1u) << tensor;
            t[tensor].data<float>()[0] = bad;
          });
      const std::string e = io_error_of([&] { loads[i](dir.file("bad.tsm")); });
      EXPECT_NE(e.find("tensor '" + tensor + "' holds"), std::string::npos) << e;
    }
  }
}

// check_finite scans in chunks without a branch per element: a bad value anywhere (a chunk's
// first or last element, the tensor's last one, a tail shorter than a chunk) is found and named
// by its index, and -0, denormals and the largest finite floats are not refused.
TEST(ModelFiles, CheckFiniteFindsEveryPositionAndNamesTheFirst) {
  const int64_t n = 3 * 16384 + 5;
  for (const int64_t at : {int64_t{0}, int64_t{16383}, int64_t{16384}, int64_t{40000}, n - 1}) {
    for (const float bad : {NAN, INFINITY, -INFINITY}) {
      Tensor t = Tensor::host({n});
      float* v = t.data<float>();
      for (int64_t i = 0; i < n; ++i) v[i] = (i % 3 == 0) ? -0.f : std::ldexp(1.f, -140);
      v[n / 2] = 3.4028235e38f;
      v[at] = bad;
      const std::string e = io_error_of([&] { check_finite({{"w", t}}, "m.tsm"); });
      EXPECT_NE(e.find("tensor 'w' holds"), std::string::npos) << e;
      EXPECT_NE(e.find("at element " + std::to_string(at) + " "), std::string::npos) << e;
    }
  }
  Tensor fine = Tensor::host({n});
  for (int64_t i = 0; i < n; ++i) fine.data<float>()[i] = -3.4028235e38f;
  EXPECT_EQ(io_error_of([&] { check_finite({{"w", fine}}, "m.tsm"); }), "");
}

// Weights restored from elsewhere than a model file (a checkpoint's best weights) are checked for
// their dtype too: an i32 tensor of the right shape reached the backend's copy and failed there
// as an internal check (found by fuzz_checkpoint).
TEST(ModelFiles, RestoredWeightsOfAnotherDtypeAreIoErrors) {
  testing::TempDir dir;
  image::LoadedModel m = image::load_model(image_model(dir), "image");
  m.weights["output.dense.bias"] = Tensor::host(m.weights["output.dense.bias"].shape(), DType::I32);
  std::string e = io_error_of([&] { image::instantiate(m, "cpu", 1); });
  EXPECT_NE(e.find("'output.dense.bias' is i32"), std::string::npos) << e;
  auto backend = make_backend("cpu");
  DlrmSpec d;
  d.n_dense = 2;
  d.table_rows = {4, 3};
  d.embedding_dim = 2;
  d.bottom = {3};
  d.top = {3};
  DlrmModel dlrm(*backend, d, 1, 4);
  std::map<std::string, Tensor> w = dlrm.snapshot();
  w["top0.bias"] = Tensor::host(w["top0.bias"].shape(), DType::I32);
  e = io_error_of([&] { dlrm.restore(w); });
  EXPECT_NE(e.find("'top0.bias' is i32"), std::string::npos) << e;
}

// Finite weights can still overflow: an image model whose scores are infinite is a data error
// naming the class, not a ranking of NaNs.
TEST(ImageModelFile, ScoresThatOverflowAreAnErrorNotARanking) {
  testing::TempDir dir;
  const std::string good = image_model(dir), big = dir.file("big.tsm");
  rewrite(
      good, big, [](rapidjson::Document&) {},
      [](std::map<std::string, Tensor>& t) {
        for (auto& [name, w] : t)
          if (name.find("running_var") == std::string::npos)
            for (int64_t i = 0; i < w.numel(); ++i) w.data<float>()[i] = 3e38f;
      });
  write_file_atomic(dir.file("x.pgm"), std::string("P5 8 8 255\n") + std::string(64, '\x90'));
  image::Options o;
  o.device = "cpu";
  o.quiet = true;
  try {
    image::predict(big, dir.file("x.pgm"), o, 3);
    FAIL() << "a prediction from infinite scores";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Data) << e.what();
    EXPECT_NE(std::string(e.what()).find("weights overflow"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(image::predict(good, dir.file("x.pgm"), o, 3));
}

}  // namespace
}  // namespace tessera
