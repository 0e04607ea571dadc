// The "cuda-emu" backend end to end: every Backend op through the real cuda/kernels/*.cu
// launchers (compiled by g++, run by the emulator with all checks on) against the host backend,
// on shapes that catch indexing bugs (sizes that are not multiples of the block or warp size,
// single elements, rows wider than a block, widths that are not multiples of 4), then:
//   - every __global__ kernel in cuda/kernels/*.cu must have been executed (coverage), and
//   - the op report (emulated / host fallback) and the kernel report are printed.
// The full parity suite (tests/parity_test.cpp with TESSERA_PARITY_BACKENDS=cuda-emu, ctest
// parity_cuda_emu) is the broader check; this test owns coverage and the report.
#include <gtest/gtest.h>

// Compiled only into the emulation build (-DTESSERA_CUDA_EMULATION=ON -DTESSERA_WITH_CUDA=OFF:
// tests/CMakeLists.txt leaves tests/emu_*_test.cpp out of the others).
#if !defined(TESSERA_CUDA_EMULATION)
#error "emu_*_test.cpp are built only with -DTESSERA_CUDA_EMULATION=ON (cuda/emu/CMakeLists.txt)"
#else

#include <dirent.h>
#include <algorithm>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cuda/emu/device_memory.h"
#include "cuda/emu/grid_launch.h"
#include "cuda/emu/report.h"
#include "cuda/emu/standin.h"
#include "cuda/kernels/kernels.h"
#include "embeddings/collection.h"
#include "host/backend/backend.h"
#include "host/data/log_mel_batch.h"

namespace tessera {
namespace {

struct Backends {
  std::unique_ptr<Backend> host = make_host_backend();
  std::unique_ptr<Backend> emu = make_backend("cuda-emu");
};
Backends& backends() {
  static Backends* b = new Backends();
  return *b;
}

Tensor random_host(const Shape& shape, std::mt19937& gen, float lo = -2.f, float hi = 2.f) {
  Tensor t = Tensor::host(shape, DType::F32);
  std::uniform_real_distribution<float> u(lo, hi);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = u(gen);
  return t;
}

// Worst relative error over elements, as a failure message (empty when within tolerance).
std::string compare(const Tensor& expect, const Tensor& got, float tol) {
  if (expect.shape() != got.shape())
    return "shape " + shape_str(got.shape()) + " vs " + shape_str(expect.shape());
  const float* e = expect.data<float>();
  const float* g = got.data<float>();
  for (int64_t i = 0; i < expect.numel(); ++i) {
    const float diff = std::fabs(e[i] - g[i]);
    if (!(diff <= tol * (1.f + std::fabs(e[i])))) {
      std::ostringstream s;
      s << "element " << i << ": host " << e[i] << ", cuda-emu " << g[i];
      return s.str();
    }
  }
  return "";
}

// Runs `op` on both backends with copies of `inputs` (host tensors); returns the outputs on the
// host, host backend's first. Tensors at positions in `outputs` are compared by the caller.
using Op = std::function<void(Backend&, std::vector<Tensor>&)>;
// `device`: the emulated CUDA backend to use (default: the shared one).
std::pair<std::vector<Tensor>, std::vector<Tensor> > run_both(const std::vector<Tensor>& inputs,
                                                              const Op& op,
                                                              Backend* device = nullptr) {
  Backends& shared = backends();
  struct {
    Backend* host;
    Backend* emu;
  } b{shared.host.get(), device ? device : shared.emu.get()};
  std::vector<Tensor> on_host, on_emu;
  for (const Tensor& t : inputs) {
    if (!t.defined()) {
      on_host.emplace_back();
      on_emu.emplace_back();
      continue;
    }
    on_host.push_back(b.host->to_device(t));
    on_emu.push_back(b.emu->to_device(t));
  }
  op(*b.host, on_host);
  op(*b.emu, on_emu);
  std::vector<Tensor> back;
  for (Tensor& t : on_emu) back.push_back(t.defined() ? b.emu->to_host(t) : Tensor());
  return {on_host, back};
}

void expect_all_close(const std::vector<Tensor>& host, const std::vector<Tensor>& emu, float tol,
                      const std::string& what) {
  for (size_t i = 0; i < host.size(); ++i) {
    if (!host[i].defined()) continue;
    if (host[i].dtype() != DType::F32) continue;
    const std::string err = compare(host[i], emu[i], tol);
    EXPECT_TRUE(err.empty()) << what << ", tensor " << i << ": " << err;
  }
}

const std::vector<std::pair<int64_t, int64_t> > kShapes = {{1, 1},   {1, 33},   {3, 7},  {33, 65},
                                                           {257, 3}, {2, 1025}, {70, 40}};

void battery_bias_act(std::mt19937& gen) {
  for (auto [r, c] : kShapes) {
    for (Activation act :
         {Activation::None, Activation::Relu, Activation::Sigmoid, Activation::Tanh}) {
      for (bool with_bias : {true, false}) {
        const std::string what = "bias_act " + std::to_string(r) + "x" + std::to_string(c) +
                                 " act " + std::to_string(static_cast<int>(act)) +
                                 (with_bias ? " bias" : "");
        Tensor x = random_host({r, c}, gen);
        Tensor bias = with_bias ? random_host({c}, gen) : Tensor();
        Tensor dy = random_host({r, c}, gen);
        auto [h, e] = run_both({x, bias, Tensor::host({r, c}), dy, Tensor::host({r, c}),
                                with_bias ? Tensor::host({c}) : Tensor()},
                               [act](Backend& b, std::vector<Tensor>& t) {
                                 b.bias_act_forward(act, t[0], t[1], t[2]);
                                 b.bias_act_backward(act, t[2], t[3], t[4], t[5]);
                               });
        expect_all_close(h, e, 1e-5f, what);
      }
    }
  }
}

void battery_dropout(std::mt19937& gen) {
  for (int64_t n : {int64_t{1}, int64_t{255}, int64_t{257}, int64_t{3000}}) {
    for (float p : {0.f, 0.3f}) {
      Tensor x = random_host({n}, gen);
      DropoutParams d{p, 1234};
      auto [h, e] = run_both({x, Tensor::host({n}), Tensor::host({n})},
                             [d](Backend& b, std::vector<Tensor>& t) {
                               b.dropout_forward(d, t[0], t[1]);
                               b.dropout_backward(d, t[1], t[2]);
                             });
      expect_all_close(h, e, 0.f, "dropout n " + std::to_string(n));
    }
  }
}

Tensor random_ids(int64_t n, int64_t vocab, std::mt19937& gen) {
  Tensor t = Tensor::host({n}, DType::I64);
  for (int64_t i = 0; i < n; ++i)
    t.data<int64_t>()[i] = static_cast<int64_t>(gen() % static_cast<uint64_t>(vocab));
  return t;
}

void battery_embedding(std::mt19937& gen) {
  for (int64_t dim : {int64_t{1}, int64_t{3}, int64_t{4}, int64_t{8}, int64_t{13}}) {
    for (int64_t n : {int64_t{1}, int64_t{37}}) {
      const int64_t vocab = 11;
      Tensor table = random_host({vocab, dim}, gen);
      Tensor ids = random_ids(n, vocab, gen);
      Tensor dout = random_host({n, dim}, gen);
      auto [h, e] = run_both({table, ids, Tensor::host({n, dim}), dout, Tensor::host({vocab, dim})},
                             [](Backend& b, std::vector<Tensor>& t) {
                               b.embedding_forward(t[0], t[1], t[2]);
                               b.embedding_backward(t[1], t[3], t[4]);
                             });
      expect_all_close(h, e, 1e-5f,
                       "embedding dim " + std::to_string(dim) + " n " + std::to_string(n));
    }
  }
  // A bad id: the same Error(Data) message on both backends, from the check kernel; on CUDA it
  // is raised by the deferred check (Backend::check_deferred), naming the op call it came from.
  Tensor table = random_host({5, 4}, gen);
  Tensor ids = Tensor::host_from<int64_t>({6}, {0, 1, 4, 5, -1, 2});
  for (Backend* b : {backends().host.get(), backends().emu.get()}) {
    Tensor t = b->to_device(table), i = b->to_device(ids), out = b->empty({6, 4});
    try {
      b->embedding_forward(t, i, out);
      b->check_deferred();
      ADD_FAILURE() << b->name() << " accepted id 5 for a 5-row table";
    } catch (const Error& err) {
      EXPECT_EQ(err.kind(), ErrorKind::Data);
      EXPECT_EQ(std::string(err.what())
                    .rfind("embedding id 5 at position 3 is outside the table's rows [0, 5)", 0),
                0u)
          << b->name() << ": " << err.what();
    }
  }
}

// DLRM dot interaction (cuda/kernels/dot_interaction.cu): batch 1, F = 1, widths not multiples
// of 4 or of the warp, more pairs than the block has threads (F = 26).
void battery_dot_interaction(std::mt19937& gen) {
  struct S {
    int64_t batch, d, f;
  };
  for (S s : {S{1, 1, 1}, S{1, 16, 1}, S{7, 13, 3}, S{3, 33, 26}}) {
    const int64_t width = s.d + s.f * (s.f + 1) / 2;
    Tensor dense = random_host({s.batch, s.d}, gen), emb = random_host({s.batch, s.f * s.d}, gen);
    Tensor dy = random_host({s.batch, width}, gen);
    auto [h, e] = run_both({dense, emb, Tensor::host({s.batch, width}), dy,
                            Tensor::host({s.batch, s.d}), Tensor::host({s.batch, s.f * s.d})},
                           [](Backend& b, std::vector<Tensor>& t) {
                             b.dot_interaction_forward(t[0], t[1], t[2]);
                             b.dot_interaction_backward(t[0], t[1], t[3], t[4], t[5]);
                           });
    expect_all_close(h, e, 1e-4f,
                     "dot interaction b" + std::to_string(s.batch) + " d" + std::to_string(s.d) +
                         " f" + std::to_string(s.f));
  }
}

// The log-mel front end (cuda/kernels/stft_frames.cu, power_spectrum.cu, log_mel_transpose.cu):
// each op on random inputs (odd n_fft and hop, a waveform shorter than half a frame, widths that
// are not multiples of the block), then the whole LogMelBatch pipeline (two gemms between).
void battery_log_mel(std::mt19937& gen) {
  struct S {
    int64_t batch, n, n_fft, hop, mels;
  };
  for (S s : {S{1, 5, 16, 4, 3}, S{3, 517, 100, 33, 7}, S{2, 1000, 256, 80, 40}}) {
    const int64_t f = 1 + s.n / s.hop, bins = s.n_fft / 2 + 1;
    const std::string what = "log-mel b" + std::to_string(s.batch) + " n" + std::to_string(s.n) +
                             " n_fft" + std::to_string(s.n_fft) + " hop" + std::to_string(s.hop);
    Tensor waves = random_host({s.batch, s.n}, gen), window = random_host({s.n_fft}, gen, 0.f, 1.f);
    Tensor spectrum = random_host({s.batch * f, 2 * bins}, gen);
    Tensor mel = random_host({s.batch * f, s.mels}, gen, 0.f, 3.f);
    const int64_t hop = s.hop;
    auto [h, e] =
        run_both({waves, window, Tensor::host({s.batch * f, s.n_fft}), spectrum,
                  Tensor::host({s.batch * f, bins}), mel, Tensor::host({s.batch, s.mels, f})},
                 [hop](Backend& b, std::vector<Tensor>& t) {
                   b.stft_frames(t[0], t[1], hop, t[2]);
                   b.power_spectrum(t[3], t[4]);
                   b.log_mel_transpose(t[5], 1e-6f, t[6]);
                 });
    expect_all_close(h, e, 1e-6f, what + " ops");

    MelConfig c;
    c.n_fft = static_cast<int>(s.n_fft);
    c.win_length = static_cast<int>(s.n_fft * 3 / 4);
    c.hop_length = static_cast<int>(s.hop);
    c.n_mels = static_cast<int>(s.mels);
    LogMelBatch fh(*backends().host, c), fe(*backends().emu, c);
    const Tensor lh = fh.compute(backends().host->to_device(waves));
    const Tensor le = backends().emu->to_host(fe.compute(backends().emu->to_device(waves)));
    // Same element math and the same (host fallback) gemm: equal up to libm differences.
    EXPECT_EQ(compare(lh, le, 1e-5f), "") << what << " LogMelBatch";
  }
}

// The table-batched embedding bags (embeddings/, kernels in embeddings/kernels/embedding_bag*.cu):
// forward, de-duplicated backward and every sparse optimizer, with a clamped id, vs the host ops.
// tests/embedding_parity_test.cpp is the full parity suite for them.
void battery_embedding_bags(std::mt19937& gen) {
  using namespace tessera::emb;
  const std::vector<TableSpec> specs{{"a", 9, 5},
                                     {"b", 6, 3, Pooling::Mean, IdPolicy::WarnClamp},
                                     {"h", 7, 4, Pooling::Sum, IdPolicy::Error, IdMapping::Hash}};
  // f32 tables, and bf16 / f16 ones (the *_half kernels): host and device round their f32 updates
  // to 16 bits apart, so a value may land one 16-bit step away (emu_half_tables_test checks the
  // 16-bit kernels exactly against the f32 kernels).
  for (const TableDType dtype : {TableDType::F32, TableDType::BF16, TableDType::F16})
    for (SparseOptimizer kind : {SparseOptimizer::Sgd, SparseOptimizer::Adagrad,
                                 SparseOptimizer::RowwiseAdagrad, SparseOptimizer::LazyAdam}) {
      CollectionOptions opts;
      opts.optimizer.kind = kind;
      opts.table_dtype = dtype;
      EmbeddingCollection eh(specs, *backends().host, opts), ee(specs, *backends().emu, opts);
      std::uniform_int_distribution<int64_t> id(0, 8);
      std::vector<std::vector<std::vector<int64_t> > > ids(3,
                                                           std::vector<std::vector<int64_t> >(5));
      for (auto& table : ids)
        for (auto& bag : table)
          for (int k = 0; k < 3; ++k) bag.push_back(id(gen));
      ids[0][2].clear();  // an empty bag
      const Bags hb = make_host_bags(ids);
      Tensor oh, oe;
      eh.forward(hb, oh);
      ee.forward(bags_to(*backends().emu, hb), oe);
      Tensor dout = random_host({5, eh.layout().out_dim()}, gen);
      const Tensor wgh = eh.weight_grad(dout);
      const Tensor wge = backends().emu->to_host(ee.weight_grad(backends().emu->to_device(dout)));
      eh.backward_and_update(dout);  // fused on the device: bag_backward_update_kernel
      ee.backward_and_update(backends().emu->to_device(dout));
      eh.apply(eh.backward(dout));  // unfused: bag_backward_kernel, then sparse_update_kernel
      ee.apply(ee.backward(backends().emu->to_device(dout)));
      const std::string what = std::string("embedding bags, ") + sparse_optimizer_name(kind) +
                               ", " + table_dtype_name(dtype);
      expect_all_close({oh, eh.weights_to_host(), wgh},
                       {backends().emu->to_host(oe), ee.weights_to_host(), wge},
                       dtype == TableDType::F32 ? 1e-5f : 1e-2f, what);
    }
}

void battery_losses(std::mt19937& gen) {
  for (int64_t n : {int64_t{1}, int64_t{257}, int64_t{1000}}) {
    Tensor z = random_host({n}, gen, -8.f, 8.f);
    Tensor y = random_host({n}, gen, 0.f, 1.f);
    auto [h, e] = run_both({z, y, Tensor::host({n}), Tensor::host({n})},
                           [](Backend& b, std::vector<Tensor>& t) {
                             b.bce_with_logits(t[0], t[1], 0.5f, t[2], t[3]);
                           });
    expect_all_close(h, e, 1e-5f, "bce n " + std::to_string(n));
  }
  for (auto [n, c] :
       std::vector<std::pair<int64_t, int64_t> >{{1, 1}, {3, 2}, {5, 33}, {7, 257}, {2, 1000}}) {
    Tensor z = random_host({n, c}, gen, -5.f, 5.f);
    Tensor labels = Tensor::host({n}, DType::I32);
    for (int64_t i = 0; i < n; ++i)
      labels.data<int32_t>()[i] = static_cast<int32_t>(gen() % static_cast<uint32_t>(c));
    auto [h, e] = run_both(
        {z, labels, Tensor::host({n}), Tensor::host({n, c})},
        [](Backend& b, std::vector<Tensor>& t) { b.softmax_xent(t[0], t[1], 0.25f, t[2], t[3]); });
    expect_all_close(h, e, 1e-5f, "softmax_xent " + std::to_string(n) + "x" + std::to_string(c));
  }
  Tensor bad = Tensor::host_from<int32_t>({3}, {0, 3, 1});
  Tensor z = random_host({3, 3}, gen);
  for (Backend* b : {backends().host.get(), backends().emu.get()}) {
    Tensor zz = b->to_device(z), l = b->to_device(bad), loss = b->empty({3}), g = b->empty({3, 3});
    try {
      b->softmax_xent(zz, l, 1.f, loss, g);
      b->check_deferred();
      ADD_FAILURE() << b->name() << " accepted class 3 of 3";
    } catch (const Error& err) {
      EXPECT_EQ(std::string(err.what()).rfind("class label 3 at row 1 is outside [0, 3)", 0), 0u)
          << b->name() << ": " << err.what();
    }
  }
}

void battery_optimizers_fill_gemm(std::mt19937& gen) {
  for (int64_t n : {int64_t{1}, int64_t{300}}) {
    for (float momentum : {0.f, 0.9f}) {
      math::SgdParams p;
      p.lr = 0.1f;
      p.momentum = momentum;
      p.weight_decay = 0.01f;
      p.nesterov = momentum != 0.f;
      auto [h, e] =
          run_both({random_host({n}, gen), random_host({n}, gen), random_host({n}, gen)},
                   [p](Backend& b, std::vector<Tensor>& t) { b.sgd_update(p, t[0], t[1], t[2]); });
      expect_all_close(h, e, 1e-6f, "sgd n " + std::to_string(n));
    }
    math::AdamParams a;
    a.bc1 = 0.1f;
    a.bc2 = 0.01f;
    auto [h, e] = run_both(
        {random_host({n}, gen), random_host({n}, gen), random_host({n}, gen),
         random_host({n}, gen, 0.f, 1.f)},
        [a](Backend& b, std::vector<Tensor>& t) { b.adam_update(a, t[0], t[1], t[2], t[3]); });
    expect_all_close(h, e, 1e-5f, "adam n " + std::to_string(n));
    auto [hf, ef] = run_both({Tensor::host({n})},
                             [](Backend& b, std::vector<Tensor>& t) { b.fill(t[0], 2.5f); });
    expect_all_close(hf, ef, 0.f, "fill n " + std::to_string(n));
  }
  // gemm: cuBLAS is not emulated (host fallback); K = 0 is the scale kernel.
  auto [h, e] =
      run_both({random_host({5, 3}, gen), random_host({3, 4}, gen), random_host({5, 4}, gen)},
               [](Backend& b, std::vector<Tensor>& t) {
                 b.gemm(Transpose::No, Transpose::No, 1.f, t[0], t[1], 0.5f, t[2]);
               });
  expect_all_close(h, e, 1e-5f, "gemm 5x3x4");
  auto [h0, e0] = run_both({Tensor::host({5, 0}), Tensor::host({0, 4}), random_host({5, 4}, gen)},
                           [](Backend& b, std::vector<Tensor>& t) {
                             b.gemm(Transpose::No, Transpose::No, 1.f, t[0], t[1], 0.5f, t[2]);
                           });
  expect_all_close(h0, e0, 0.f, "gemm K = 0");
}

TEST(EmuBackend, DeviceIsEmulatedCudaMemory) {
  Backend& b = *backends().emu;
  EXPECT_EQ(b.device(), (Device{DeviceKind::Cuda, 0}));
  Tensor t = b.empty({3, 2});
  EXPECT_FALSE(t.is_host());
  EXPECT_EQ(b.to_host(t).data<float>()[5], 0.f) << "empty() zero-fills";
  // A host tensor is not this backend's: the same edge check as on a GPU.
  Tensor host = Tensor::host({3, 2});
  EXPECT_THROW(b.fill(host, 1.f), Error);
}

TEST(EmuBackend, BiasActMatchesHost) {
  std::mt19937 gen(1);
  battery_bias_act(gen);
}
TEST(EmuBackend, DropoutMatchesHost) {
  std::mt19937 gen(2);
  battery_dropout(gen);
}
TEST(EmuBackend, EmbeddingMatchesHost) {
  std::mt19937 gen(3);
  battery_embedding(gen);
}
TEST(EmuBackend, LossesMatchHost) {
  std::mt19937 gen(4);
  battery_losses(gen);
}
TEST(EmuBackend, OptimizersFillGemmMatchHost) {
  std::mt19937 gen(5);
  battery_optimizers_fill_gemm(gen);
}
TEST(EmuBackend, EmbeddingBagsMatchHost) {
  std::mt19937 gen(7);
  battery_embedding_bags(gen);
}
TEST(EmuBackend, DotInteractionMatchesHost) {
  std::mt19937 gen(8);
  battery_dot_interaction(gen);
}

TEST(EmuBackend, LogMelFrontEndMatchesHost) {
  std::mt19937 gen(9);
  battery_log_mel(gen);
}

// The LSTM weight conversion (cuda/kernels/lstm_weights.cu), called directly as cuda/cudnn_lstm.cpp
// does: a block table in device memory, blocks in scrambled order on the cuDNN side, counts below,
// at and far above what one block of threads covers (the last loops inside the kernel), checked
// against a plain host loop both ways; floats outside every block must stay untouched.
void battery_lstm_weights(std::mt19937& gen) {
  const std::vector<int64_t> counts{1, 256, 300, 64 * 256 + 7, 5};
  std::vector<int64_t> host_table;
  int64_t canonical_at = 0, total = 0;
  for (int64_t c : counts) total += c + 3;  // 3 untouched floats after each block
  int64_t space_at = total;                 // filled from the end: scrambled order
  for (int64_t c : counts) {
    space_at -= c + 3;
    host_table.insert(host_table.end(), {canonical_at, space_at, c});
    canonical_at += c + 3;
  }
  const size_t n = static_cast<size_t>(total);
  emu::DeviceArray<int64_t> table(host_table.size(), emu::ElementKind::I64, "lstm weight table");
  emu::DeviceArray<float> canonical(n, emu::ElementKind::F32, "canonical");
  emu::DeviceArray<float> space(n, emu::ElementKind::F32, "weight space");
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> want_space(n, -7.f), canon(n);
  for (size_t i = 0; i < host_table.size(); ++i) table[i] = host_table[i];
  for (size_t i = 0; i < n; ++i) {
    canon[i] = canonical[i] = u(gen);
    space[i] = -7.f;
  }
  for (size_t e = 0; e < counts.size(); ++e)
    for (int64_t i = 0; i < counts[e]; ++i)
      want_space[static_cast<size_t>(host_table[3 * e + 1] + i)] =
          canon[static_cast<size_t>(host_table[3 * e] + i)];
  const int64_t max_count = *std::max_element(counts.begin(), counts.end());
  const int64_t entries = static_cast<int64_t>(counts.size());
  cuda::launch_lstm_weights_convert(table.data(), entries, max_count, canonical.data(),
                                    space.data(), true, nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(space[i], want_space[i]) << "weight space float " << i;
  // Back: canonical floats outside the blocks keep their value, the blocks get the space's.
  for (size_t i = 0; i < n; ++i) canonical[i] = 99.f;
  for (size_t i = 0; i < n; ++i) space[i] = want_space[i] + 1.f;
  cuda::launch_lstm_weights_convert(table.data(), entries, max_count, canonical.data(),
                                    space.data(), false, nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<float> want_canon(n, 99.f);
  for (size_t e = 0; e < counts.size(); ++e)
    for (int64_t i = 0; i < counts[e]; ++i)
      want_canon[static_cast<size_t>(host_table[3 * e] + i)] =
          canon[static_cast<size_t>(host_table[3 * e] + i)] + 1.f;
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(canonical[i], want_canon[i]) << "canonical float " << i;
}

// Every __global__ kernel defined in cuda/kernels/*.cu and embeddings/kernels/*.cu.
// The cuDNN ops through CudaBackend's own cuDNN code (cuda/cudnn_conv.cpp, cudnn_pool_bn.cpp,
// cudnn_lstm.cpp) and the cuDNN stand-ins: a strided, padded convolution with bias, max and average
// pooling, batch normalisation (training, backward, inference) and a two-layer bidirectional LSTM
// (training forward and backward), each against the host backend. The parity suites cover these
// ops broadly (parity_conv_cuda_emu, lstm_parity_cuda_emu); here they put the vendor entry points
// into this process's report.
void battery_cudnn(std::mt19937& gen, Backend& device) {
  Conv2dParams cp;
  cp.stride_h = 2;
  cp.pad_h = cp.pad_w = 1;
  const Tensor w = random_host({4, 3, 3, 3}, gen), bias = random_host({4}, gen);
  // A second batch size of the same layer reuses the measured algorithms (workspace queries).
  for (int64_t n : {2, 3}) {
    const Tensor xn = random_host({n, 3, 7, 6}, gen);
    const Shape ys = conv2d_output_shape(cp, xn.shape(), w.shape());
    auto [ch, ce] = run_both(
        {xn, w, bias, Tensor::host(ys), random_host(ys, gen), Tensor::host(xn.shape()),
         Tensor::host(w.shape()), Tensor::host({4})},
        [&](Backend& b, std::vector<Tensor>& t) {
          b.conv2d_forward(cp, t[0], t[1], t[2], t[3]);
          b.conv2d_backward(cp, t[0], t[1], t[4], t[5], t[6], t[7]);
        },
        &device);
    expect_all_close(ch, ce, 1e-3f, "conv2d n" + std::to_string(n));
  }
  const Tensor x = random_host({2, 3, 7, 6}, gen);
  for (PoolKind kind : {PoolKind::Max, PoolKind::Average}) {
    Pool2dParams pp;
    pp.kind = kind;
    pp.window_h = pp.window_w = 3;
    pp.pad_h = pp.pad_w = 1;
    const Shape ps{2, 3, conv_out_extent(7, 3, 2, 1), conv_out_extent(6, 3, 2, 1)};
    auto [ph, pe] = run_both(
        {x, Tensor::host(ps), random_host(ps, gen), Tensor::host(x.shape())},
        [&](Backend& b, std::vector<Tensor>& t) {
          b.pool2d_forward(pp, t[0], t[1]);
          b.pool2d_backward(pp, t[0], t[1], t[2], t[3]);
        },
        &device);
    expect_all_close(ph, pe, 1e-5f, kind == PoolKind::Max ? "max pool" : "average pool");
  }
  BatchNormParams bp;
  const Tensor bx = random_host({4, 3, 5, 5}, gen);
  auto [bh, be] = run_both(
      {bx, random_host({3}, gen), random_host({3}, gen), random_host({3}, gen),
       random_host({3}, gen, 0.5f, 1.5f), Tensor::host(bx.shape()), Tensor::host({3}),
       Tensor::host({3}), random_host(bx.shape(), gen), Tensor::host(bx.shape()), Tensor::host({3}),
       Tensor::host({3}), Tensor::host(bx.shape())},
      [&](Backend& b, std::vector<Tensor>& t) {
        b.batchnorm_forward(bp, t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7]);
        b.batchnorm_backward(bp, t[0], t[8], t[1], t[6], t[7], t[9], t[10], t[11]);
        BatchNormParams infer = bp;
        infer.mode = BatchNormMode::Inference;
        Tensor none;
        b.batchnorm_forward(infer, t[0], t[1], t[2], t[3], t[4], t[12], none, none);
      },
      &device);
  expect_all_close(bh, be, 1e-3f, "batchnorm");
  LstmConfig lc;
  lc.input_size = 5;
  lc.hidden_size = 4;
  lc.num_layers = 2;
  lc.directions = LstmDirections::Bidirectional;
  const int64_t steps = 3, batch = 2, states = 4, out = 8, p = lstm_weight_count(lc);
  auto [lh, le] = run_both(
      {random_host({steps, batch, 5}, gen), random_host({p}, gen, -0.3f, 0.3f),
       Tensor::host({steps, batch, out}), Tensor::host({states, batch, 4}),
       Tensor::host({states, batch, 4}), random_host({steps, batch, out}, gen),
       Tensor::host({steps, batch, 5}), Tensor::host({p})},
      [&](Backend& b, std::vector<Tensor>& t) {
        LstmIo io;
        io.x = t[0];
        io.w = t[1];
        io.y = t[2];
        io.hn = t[3];
        io.cn = t[4];
        b.lstm_forward(lc, LstmMode::Training, io);
        LstmGrads g;
        g.dy = t[5];
        g.dx = t[6];
        g.dw = t[7];
        b.lstm_backward(lc, io, g);
      },
      &device);
  expect_all_close(lh, le, 1e-4f, "lstm");
}

// The vendor entry points tessera's CUDA code calls: every cublas*/cudnn* call, every CUB algorithm
// and thrust::sequence named in cuda/*.cpp and embeddings/device_*.{cpp,cu}, read from the sources.
std::set<std::string> vendor_calls_in_sources() {
  std::set<std::string> names;
  const std::regex call_re(R"(\b((?:cublas|cudnn)[A-Z]\w*|cub::\w+::\w+|thrust::sequence)\s*\()");
  const std::vector<std::pair<std::string, std::regex> > sources = {
      {"/cuda", std::regex(R"(.*\.(cpp|h)$)")},
      {"/embeddings", std::regex(R"(device_.*\.(cpp|cu)$)")}};
  for (const auto& [folder, file_re] : sources) {
    const std::string dir = std::string(TESSERA_SOURCE_DIR) + folder;
    DIR* d = opendir(dir.c_str());
    if (!d) continue;
    while (dirent* ent = readdir(d)) {
      const std::string file = ent->d_name;
      if (!std::regex_match(file, file_re)) continue;
      std::ifstream in(dir + "/" + file);
      std::stringstream text;
      text << in.rdbuf();
      const std::string s = text.str();
      for (std::sregex_iterator it(s.begin(), s.end(), call_re), end; it != end; ++it)
        names.insert((*it)[1].str());
    }
    closedir(d);
  }
  return names;
}

std::set<std::string> kernels_in_sources() {
  std::set<std::string> names;
  const std::regex global_re(R"(__global__\s+void\s+(\w+)\s*\()");
  for (const char* folder : {"/cuda/kernels", "/embeddings/kernels"}) {
    const std::string dir = std::string(TESSERA_SOURCE_DIR) + folder;
    DIR* d = opendir(dir.c_str());
    if (!d) continue;
    while (dirent* ent = readdir(d)) {
      const std::string file = ent->d_name;
      if (file.size() < 3 || file.substr(file.size() - 3) != ".cu") continue;
      std::ifstream in(dir + "/" + file);
      std::stringstream text;
      text << in.rdbuf();
      const std::string s = text.str();
      for (std::sregex_iterator it(s.begin(), s.end(), global_re), end; it != end; ++it)
        names.insert((*it)[1]);
    }
    closedir(d);
  }
  return names;
}

// This stop's new ops, one battery file per package (they use run_both and the helpers above).
#include "tests/support/emu_battery_elementwise.inc"
#include "tests/support/emu_battery_loss_accumulate.inc"
#include "tests/support/emu_battery_rec.inc"

TEST(EmuBackend, EveryCustomKernelRunsAndTheReportSaysHow) {
  emu::reset_kernel_stats();
  std::mt19937 gen(6);
  battery_bias_act(gen);
  battery_dropout(gen);
  battery_embedding(gen);
  battery_losses(gen);
  battery_optimizers_fill_gemm(gen);
  battery_embedding_bags(gen);
  battery_dot_interaction(gen);
  battery_log_mel(gen);
  battery_lstm_weights(gen);
  battery_elementwise(gen);
  battery_loss_accumulate(gen);
  battery_rec(gen);
  {
    // A backend of its own, used and then destroyed, so the vendor calls of teardown (handles,
    // descriptors) run here too.
    std::unique_ptr<Backend> own = make_backend("cuda-emu");
    battery_cudnn(gen, *own);
    Tensor a = own->to_device(random_host({3, 5}, gen)), c = own->empty({3, 3});
    own->gemm(Transpose::No, Transpose::Yes, 1.f, a, a, 0.f, c);
    own->synchronize();
  }
  const bool parity_ok = !HasFailure();

  const std::set<std::string> expected = kernels_in_sources();
  ASSERT_FALSE(expected.empty()) << "no __global__ kernels found under cuda/kernels";
  // The embedding-bag kernels are found too (they live in embeddings/kernels/).
  EXPECT_EQ(expected.count("bag_forward_kernel"), 1u);
  std::map<std::string, emu::KernelStats> ran;
  for (const auto& k : emu::kernel_stats()) ran[k.kernel] = k;
  std::cout
      << "Kernel coverage of the emulated suite (cuda/kernels/*.cu, embeddings/kernels/*.cu), "
         "parity vs host "
      << (parity_ok ? "ok" : "FAILED") << ":\n";
  for (const std::string& k : expected) {
    auto it = ran.find(k);
    const bool executed = it != ran.end() && it->second.launches > it->second.failed_launches;
    std::cout << "  " << std::left << std::setw(34) << k
              << (executed ? "executed, " : "NOT EXECUTED")
              << (executed
                      ? std::to_string(it->second.launches) + " launches, " +
                            std::to_string(it->second.schedule_checked) + " schedule-checked, " +
                            (parity_ok ? "matches host" : "see failures above")
                      : "")
              << "\n";
    EXPECT_TRUE(executed) << "kernel " << k
                          << " in cuda/kernels was never executed by the emulated suite";
  }
  for (const auto& kv : ran)
    EXPECT_TRUE(expected.count(kv.first))
        << "ran kernel " << kv.first << " not found in cuda/kernels sources";
  // Every vendor entry point the CUDA code calls ran through its stand-in here, and a documented
  // rule was checked on it (the report lists which). Entry points reached only on error paths are
  // named with the reason.
  const std::map<std::string, std::string> error_paths = {
      {"cudnnGetErrorString", "formats a failed call's status"}};
  // The stand-in report, entry point -> whether a rule line follows it.
  std::map<std::string, bool> checked;
  {
    std::istringstream lines(emu::format_standin_report());
    std::string line, entry;
    while (std::getline(lines, line)) {
      if (line.rfind("    rule \"", 0) == 0 && !entry.empty()) {
        checked[entry] = true;
      } else if (line.rfind("  ", 0) == 0 && line.size() > 2 && line[2] != ' ') {
        // "  <library> <entry point>: N calls"
        const size_t name = line.find(' ', 2) + 1, colon = line.find(": ", name);
        entry = line.substr(name, colon - name);
        checked.emplace(entry, false);
      }
    }
  }
  for (const std::string& call : vendor_calls_in_sources()) {
    if (error_paths.count(call)) continue;
    const auto it = checked.find(call);
    EXPECT_NE(it, checked.end()) << "vendor entry point " << call
                                 << " is called in the CUDA sources but never ran here";
    if (it != checked.end()) EXPECT_TRUE(it->second) << "no stand-in rule was checked on " << call;
  }
  std::cout << emu::format_report();
}

}  // namespace
}  // namespace tessera

#endif  // TESSERA_CUDA_EMULATION
