// Fuzz target: training checkpoints (checkpoint.tsc) as a resumed run reads them
// (host/scheduler/checkpoint.h: load_checkpoint over the tensor archive), into the models whose
// training resumes from them:
//   mode 0  a behaviour MLP (parameters with Adam's two state slots), then its best weights
//           restored as training does at the end (behaviour::restore_weights);
//   mode 1  a DLRM: dense parameters, then the tables and sparse optimizer state from the
//           checkpoint's extra tensors ("embedding." names, as the behaviour task keeps them).
// The recommendation task's own checkpoint format has its own target (fuzz_rec_checkpoint).
//
// Input: 1 option byte, then the file's bytes without its last 4 (the CRC-32).
//   bit 0     the model (0 MLP, 1 DLRM)
//   bit 1     keep the bytes as they are (no CRC appended): the CRC check itself is fuzzed
// Invariants checked: after a load the state's counters are non-negative and every parameter
// holds what the checkpoint stored.
#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>

#include "host/backend/backend.h"
#include "host/core/archive.h"
#include "host/model/mlp.h"
#include "host/scheduler/checkpoint.h"
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
  Models() {
    MlpSpec m;
    m.n_dense = 2;
    m.n_cat = 2;
    m.embedding_rows = 5;
    m.embedding_dim = 2;
    m.hidden = {3};
    mlp = std::make_unique<MlpModel>(*backend, m, 1, 4);
    for (Parameter* p : mlp->parameters()) {  // Adam's slots, as its optimizer makes them
      p->state1 = backend->empty(p->value.shape());
      p->state2 = backend->empty(p->value.shape());
    }
    DlrmSpec d;
    d.n_dense = 2;
    d.table_rows = {4, 3};
    d.embedding_dim = 2;
    d.bottom = {3};
    d.top = {3};
    d.sparse.kind = emb::SparseOptimizer::Adagrad;
    dlrm = std::make_unique<DlrmModel>(*backend, d, 1, 4);
  }
};

void check_loaded(const scheduler::TrainingState& st, const std::vector<Parameter*>& params,
                  const std::string& path) {
  fuzz::check(st.epochs_done >= 0 && st.step >= 0 && st.samples >= 0 && st.best_epoch >= -1 &&
                  st.bad_epochs >= 0,
              "negative counters after a load");
  const Archive a = load_archive(path);
  for (Parameter* p : params) {
    const Tensor& stored = a.tensors.at("value/" + p->name);
    fuzz::check(std::memcmp(stored.raw(), p->value.raw(), stored.bytes()) == 0,
                "parameter '" + p->name + "' does not hold the stored values");
  }
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
    scheduler::TrainingState st;
    std::map<std::string, Tensor> best, extra;
    if ((flags & 1) == 0) {
      const std::vector<Parameter*> params = models.mlp->parameters();
      scheduler::load_checkpoint(path, be, params, kTag, &st, &best, &extra);
      check_loaded(st, params, path);
      if (!best.empty()) behaviour::restore_weights(*models.mlp, best);
    } else {
      const std::vector<Parameter*> params = models.dlrm->parameters();
      scheduler::load_checkpoint(path, be, params, kTag, &st, &best, &extra);
      check_loaded(st, params, path);
      std::map<std::string, Tensor> sparse;  // as the behaviour task's DLRM takes it back
      for (const auto& [name, t] : extra) {
        if (name.rfind("embedding.", 0) != 0)
          TESSERA_THROW(Io, "the state holds '" << name << "', which a dlrm model has not");
        sparse[name.substr(10)] = t;
      }
      models.dlrm->restore_sparse_state(sparse);
      if (!best.empty()) models.dlrm->restore(best);
    }
  });
  return 0;
}
