// Fuzz target: the behaviour task's training checkpoint (checkpoint.tsc in the Trainer's format,
// host/train/checkpoint.h: load_training_checkpoint), as `tessera train --resume` and a pipeline's
// train stage read it, into the models whose training resumes from it, as the task's
// restore_training_state and restore_snapshot take it back: the Trainer hands the state of the
// task's optimizer groups to train::restore_optimizer_state, the rest to the task (which refuses
// anything: every behaviour weight is in a group):
//   mode 0  a behaviour MLP: its parameters with Adam's two state slots (the dense group), then
//           the kept weights (behaviour::restore_weights);
//   mode 1  a DLRM: the tables, sparse optimizer state and step (the sparse group "tables"), the
//           dense parameters (SGD, no slots), then the kept weights.
// The recommendation task's checkpoints have their own target (fuzz_rec_checkpoint).
//
// Input: 1 option byte, then the file's bytes without its last 4 (the CRC-32).
//   bit 0     the model (0 MLP, 1 DLRM)
//   bit 1     keep the bytes as they are (no CRC appended): the CRC check itself is fuzzed
// Seeds: save_training_checkpoint (the Trainer's writer) of these models' state, their weights
// kept as the best, under the tag "fuzz" (mlp-adam-best, dlrm-adagrad-best).
// Invariants checked: a loaded checkpoint's counters are in range, and every parameter holds what
// the checkpoint stored.
#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>

#include "host/backend/backend.h"
#include "host/model/mlp.h"
#include "host/model/optimizer.h"
#include "host/train/checkpoint.h"
#include "pipelines/behaviour/dlrm_model.h"
#include "pipelines/behaviour/model_artefact.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using namespace tessera;

const std::string kTag = "fuzz";

// The archive's CRC-32 appended, as save_archive writes it.
std::string with_crc(std::string bytes) {
  const uint32_t crc = static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
  bytes.append(reinterpret_cast<const char*>(&crc), 4);
  return bytes;
}

struct Models {
  std::unique_ptr<Backend> backend = make_host_backend();
  std::unique_ptr<MlpModel> mlp;
  std::unique_ptr<DlrmModel> dlrm;
  std::unique_ptr<Optimizer> mlp_opt, dlrm_opt;
  Models() {
    MlpSpec m;
    m.n_dense = 2;
    m.n_cat = 2;
    m.embedding_rows = 5;
    m.embedding_dim = 2;
    m.hidden = {3};
    mlp = std::make_unique<MlpModel>(*backend, m, 1, 4);
    mlp_opt = std::make_unique<Optimizer>(*backend, OptimizerConfig{}, LrSchedule{});  // Adam
    mlp_opt->attach(mlp->parameters());
    DlrmSpec d;
    d.n_dense = 2;
    d.table_rows = {4, 3};
    d.embedding_dim = 2;
    d.bottom = {3};
    d.top = {3};
    d.sparse.kind = emb::SparseOptimizer::Adagrad;
    dlrm = std::make_unique<DlrmModel>(*backend, d, 1, 4);
    OptimizerConfig sgd;
    sgd.type = OptimizerType::Sgd;
    sgd.momentum = 0;
    dlrm_opt = std::make_unique<Optimizer>(*backend, sgd, LrSchedule{});
    dlrm_opt->attach(dlrm->parameters());
    dlrm_opt->add_sparse_group("tables", dlrm->sparse_group());
  }
};

void check_loaded(const train::TrainingCheckpoint& c, const std::vector<Parameter*>& params) {
  const train::LoopState& s = c.loop;
  fuzz::check(s.epochs_done >= 0 && s.step >= 0 && s.samples >= 0 && s.best_epoch >= -1 &&
                  s.best_epoch <= s.epochs_done && s.bad_epochs >= 0,
              "counters out of range after a load");
  for (Parameter* p : params)
    for (const auto& [name, stored] : c.state)
      if (name == "value/" + p->name)
        fuzz::check(std::memcmp(stored.raw(), p->value.raw(), stored.bytes()) == 0,
                    "parameter '" + p->name + "' does not hold the stored values");
}

std::map<std::string, Tensor> as_map(const NamedTensors& t) {
  return std::map<std::string, Tensor>(t.begin(), t.end());
}

// As the Trainer resumes a task with an optimizer: the groups' tensors to the optimizer, the rest
// to the behaviour task, which holds nothing else.
void restore(Backend& be, Optimizer& opt, const train::TrainingCheckpoint& c) {
  NamedTensors groups;
  for (const auto& [name, t] : c.state) {
    if (!train::is_optimizer_tensor(opt, name))
      TESSERA_THROW(Io, "behaviour checkpoint: tensor '" << name << "' belongs to no group");
    groups.emplace_back(name, t);
  }
  train::restore_optimizer_state(be, opt, groups, c.loop.step, "behaviour checkpoint");
  fuzz::check(opt.steps_taken() == c.loop.step, "the optimizer's step is not the checkpoint's");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Models models;
  static fuzz::TempFile tmp("checkpoint");
  fuzz::ByteReader in(data, size);
  const uint8_t flags = in.byte();
  const std::string raw(in.rest());
  const std::string& path = tmp.write((flags & 2) != 0 ? raw : with_crc(raw));
  Backend& be = *models.backend;
  fuzz::expect_input_errors([&] {
    const train::TrainingCheckpoint c = train::load_training_checkpoint(path, "behaviour", kTag);
    if ((flags & 1) == 0) {
      restore(be, *models.mlp_opt, c);
      check_loaded(c, models.mlp->parameters());
      if (!c.best.empty()) behaviour::restore_weights(*models.mlp, as_map(c.best));
    } else {
      restore(be, *models.dlrm_opt, c);
      check_loaded(c, models.dlrm->parameters());
      if (!c.best.empty()) models.dlrm->restore(as_map(c.best));
    }
  });
  return 0;
}
