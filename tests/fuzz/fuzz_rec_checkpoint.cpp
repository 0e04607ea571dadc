// Fuzz target: the recommendation task's training checkpoint (checkpoint.tsc in the Trainer's
// format, host/train/checkpoint.h: load_training_checkpoint), as `tessera train --resume` reads
// it, into the model it resumes as the Trainer does: the tables, sparse optimizer slots and step
// through the optimizer's sparse group "tables" (train::restore_optimizer_state), the global mean
// through the task's restore_training_state (RecModel::restore_mean_state); then any kept weights
// as the task's restore_snapshot takes them (RecModel::restore_state).
//
// Input: 1 option byte, then the file's bytes without its last 4 (the CRC-32).
//   bit 0     the model: 0 biased MF (SGD), 1 two-tower (Adagrad)
//   bit 1     keep the bytes as they are (no CRC appended): the CRC check itself is fuzzed
// Seeds: save_training_checkpoint (the Trainer's writer) of these models' training state (as
// trained_state() below lays it out) after two training steps, under the tag "fuzz" (mf-sgd,
// two-tower-adagrad; mf-sgd-best also keeps their state_tensors() as the best weights).
// Invariants checked: a loaded checkpoint's counters are in range, and the model's state
// afterwards is the state the file held.
#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "host/backend/backend.h"
#include "host/model/optimizer.h"
#include "host/train/checkpoint.h"
#include "pipelines/recommend/rec_model.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using namespace tessera;
using namespace tessera::recommend;

const std::string kTag = "fuzz";

std::string with_crc(std::string bytes) {
  const uint32_t crc = static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
  bytes.append(reinterpret_cast<const char*>(&crc), 4);
  return bytes;
}

// The models whose checkpoints the seeds are: 6 users, 5 items, dim 3.
struct Models {
  std::unique_ptr<Backend> backend = make_host_backend();
  std::unique_ptr<RecModel> mf, two_tower;
  std::unique_ptr<Optimizer> mf_opt, two_tower_opt;
  Models() {
    const RecommendConfig a = parse_recommend_config(
        R"({"task": "recommend", "name": "fuzz", "model": "mf", "data": {"path": "r.csv"},
            "embeddings": {"dim": 3, "optimizer": {"kind": "sgd", "lr": 0.1}}})",
        "fuzz mf config");
    const RecommendConfig b = parse_recommend_config(
        R"({"task": "recommend", "name": "fuzz", "model": "two_tower", "data": {"path": "r.csv"},
            "embeddings": {"dim": 3, "optimizer": {"kind": "adagrad", "lr": 0.1}}})",
        "fuzz two-tower config");
    mf = std::make_unique<RecModel>(a, 6, 5, *backend);
    two_tower = std::make_unique<RecModel>(b, 6, 5, *backend);
    mf_opt = optimizer_of(*mf, 0.1);
    two_tower_opt = optimizer_of(*two_tower, 0.1);
  }
  // As recommend's train() makes it: no dense group, the tables as the sparse group "tables".
  std::unique_ptr<Optimizer> optimizer_of(RecModel& model, double lr) {
    OptimizerConfig reference;
    reference.type = OptimizerType::Sgd;
    reference.lr = lr;
    auto opt = std::make_unique<Optimizer>(*backend, reference, LrSchedule{});
    opt->add_sparse_group("tables", model.sparse_group());
    return opt;
  }
};

// What a checkpoint of the model holds: the task's global mean, then the optimizer's groups.
NamedTensors trained_state(Backend& be, RecModel& model, const Optimizer& opt) {
  NamedTensors s = model.mean_state();
  const NamedTensors groups = train::optimizer_state(be, opt);
  s.insert(s.end(), groups.begin(), groups.end());
  return s;
}

// `actual` holds `state` (each of its tensors that the file named).
void check_holds(const NamedTensors& actual, const NamedTensors& state) {
  for (const auto& [name, t] : actual) {
    for (const auto& [stored_name, stored] : state) {
      if (stored_name != name) continue;
      fuzz::check(stored.numel() == t.numel() && std::memcmp(stored.raw(), t.raw(), t.bytes()) == 0,
                  "state '" + name + "' is not what the checkpoint held");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Models models;
  static fuzz::TempFile tmp("rec-checkpoint");
  fuzz::ByteReader in(data, size);
  const uint8_t flags = in.byte();
  const std::string raw(in.rest());
  const std::string& path = tmp.write((flags & 2) != 0 ? raw : with_crc(raw));
  RecModel& model = (flags & 1) == 0 ? *models.mf : *models.two_tower;
  Optimizer& opt = (flags & 1) == 0 ? *models.mf_opt : *models.two_tower_opt;
  Backend& be = *models.backend;
  fuzz::expect_input_errors([&] {
    const train::TrainingCheckpoint c = train::load_training_checkpoint(path, "recommend", kTag);
    const train::LoopState& s = c.loop;
    fuzz::check(s.epochs_done >= 0 && s.step >= 0 && s.samples >= 0 && s.best_epoch >= -1 &&
                    s.best_epoch <= s.epochs_done && s.bad_epochs >= 0,
                "checkpoint counters");
    NamedTensors groups, own;
    for (const auto& named : c.state)
      (train::is_optimizer_tensor(opt, named.first) ? groups : own).push_back(named);
    train::restore_optimizer_state(be, opt, groups, s.step, "recommend checkpoint");
    model.restore_mean_state(own);
    check_holds(trained_state(be, model, opt), c.state);
    fuzz::check(opt.steps_taken() == s.step, "the step is not the checkpoint's");
    if (!c.best.empty()) {
      model.restore_state(c.best, model.steps());
      check_holds(model.state_tensors(), c.best);
    }
  });
  return 0;
}
