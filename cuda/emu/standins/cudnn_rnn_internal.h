#pragma once
// What the cuDNN RNN stand-in's two files share (cuda/emu/standins/cudnn_rnn.cpp: descriptors,
// sizes, weight parameters; cudnn_rnn_compute.cpp: forward and backward): the descriptor structs,
// the rule groups several calls check, the stand-in's weight-space, workspace and reserve layouts,
// and the record of which reserve spaces hold a training forward.
//
// Weight space (ours; cuDNN's own is undocumented, which is why callers must ask
// cudnnGetRNNWeightParams): first every matrix, then every bias vector. Matrices in pseudo-layer
// order p = l*D + d, within one in linLayerID order 0..7, each [H, cols] row-major (cols = the
// layer's input width for ids 0-3, H for 4-7); then the biases [H] in the same order. Every block
// starts on a 64-byte boundary, so the space has gaps and differs from the canonical layout
// (host/backend/lstm_types.h) unless a caller converts block by block as cuDNN requires.
//
// Workspace: the canonical weights [P] (the host LSTM reads them).
// Reserve (training only): [host LSTM reserve R][x [T, B, I]][dW canonical [P]]: the host LSTM's
// backward needs x, which cudnnRNNBackwardData_v8 is not given, and it computes the data and
// weight gradients together, so BackwardData leaves dW there for BackwardWeights to add.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cuda/emu/standins/cudnn_core_internal.h"
#include "host/backend/lstm_types.h"

struct cudnnDropoutStruct {
  bool set = false;
  float p = 0.f;
  unsigned long long seed = 0;
};

struct cudnnRNNStruct {
  bool set = false;
  cudnnRNNAlgo_t algo = CUDNN_RNN_ALGO_STANDARD;
  cudnnRNNMode_t cell = CUDNN_LSTM;
  cudnnRNNBiasMode_t bias = CUDNN_RNN_DOUBLE_BIAS;
  cudnnDirectionMode_t dir = CUDNN_UNIDIRECTIONAL;
  cudnnRNNInputMode_t input_mode = CUDNN_LINEAR_INPUT;
  cudnnDataType_t type = CUDNN_DATA_FLOAT;
  int32_t input = 0, hidden = 0, proj = 0, layers = 0;
  // The dropout descriptor's settings when cudnnSetRNNDescriptor_v8 ran (cuDNN reads them there).
  bool has_dropout = false;
  float dropout = 0.f;
  unsigned long long dropout_seed = 0;
  uint32_t aux = 0;

  int dirs() const { return dir == CUDNN_BIDIRECTIONAL ? 2 : 1; }
};

struct cudnnRNNDataStruct {
  bool set = false;
  cudnnDataType_t type = CUDNN_DATA_FLOAT;
  cudnnRNNDataLayout_t layout = CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_UNPACKED;
  int max_seq = 0, batch = 0, vector = 0;
  std::vector<int> lengths;
};

namespace tessera::emu::cudnn_standin {

// ---- rule groups -------------------------------------------------------------------------------

// Created by its cudnnCreate*Descriptor, not destroyed, and (for the last two) set.
bool dropout_desc(Rules& r, cudnnDropoutDescriptor_t d, const char* name);
bool rnn_desc(Rules& r, cudnnRNNDescriptor_t d, const char* name);
bool rnn_data_desc(Rules& r, cudnnRNNDataDescriptor_t d, const char* name);
// An RNN data descriptor as input (x: vectorSize = inputSize) or output (y: D * projSize) of
// `rnn`: set, of the RNN's data type, and an unpacked layout only with padded I/O enabled.
bool rnn_data_for(Rules& r, const cudnnRNNStruct& rnn, cudnnRNNDataDescriptor_t d, bool output,
                  const char* name);
// What the stand-in can compute of data cuDNN accepts: sequence-major, every sequence full length.
bool computable_data(Rules& r, const cudnnRNNDataStruct& d, const char* name);
// h/c state descriptor: set, f32, dims [L*D, B, H] (B: xDesc's batch), fully packed.
bool state_desc(Rules& r, const cudnnRNNStruct& rnn, int batch, cudnnTensorDescriptor_t d,
                const char* name);

// ---- layouts -----------------------------------------------------------------------------------

LstmConfig lstm_config(const cudnnRNNStruct& rnn);

// Offsets (floats) of every block of the stand-in's weight space.
struct WeightLayout {
  std::vector<int64_t> matrix;  // [pseudo-layer * 8 + linLayerID]
  std::vector<int64_t> bias;
  int64_t floats = 0;  // the whole space, gaps included
};
WeightLayout weight_layout(const LstmConfig& c);
// The canonical offset of one block (matrix or bias) and its float count.
struct CanonicalBlock {
  int64_t at = 0;
  int64_t count = 0;
};
CanonicalBlock canonical_matrix(const LstmConfig& c, int pseudo, int lin);
CanonicalBlock canonical_bias(const LstmConfig& c, int pseudo, int lin);
// Weight space -> canonical [P] (gaps not read); canonical [P] added into a weight space.
void space_to_canonical(const LstmConfig& c, const WeightLayout& l, const float* space,
                        float* canonical);
void add_canonical_to_space(const LstmConfig& c, const WeightLayout& l, const float* canonical,
                            float* space);

size_t weight_space_bytes(const LstmConfig& c);
size_t workspace_bytes(const LstmConfig& c);
// The training reserve's regions, in floats from its start.
struct ReserveLayout {
  int64_t host = 0;  // the host LSTM's reserve, at 0
  int64_t x = 0;     // x copy offset
  int64_t dw = 0;    // canonical dW offset
  int64_t floats = 0;
};
ReserveLayout reserve_layout(const LstmConfig& c, int64_t t, int64_t b);

// ---- reserve spaces between calls --------------------------------------------------------------

// What the last call on a reserve space left there. Recorded at call time (the calls on one
// stream are ordered, as their work is).
enum class ReserveStage : uint8_t { None, Forward, BackwardData };
struct ReserveKey {
  LstmConfig config;
  int64_t t = 0, b = 0;
};
void record_reserve(const void* reserve, const ReserveKey& key, ReserveStage stage);
// The stage recorded for `reserve` if its key equals `key`, else None.
ReserveStage reserve_stage(const void* reserve, const ReserveKey& key);

// A non-owning host f32 tensor over emulated device memory (the host LSTM's view of it).
Tensor device_view(const void* p, const Shape& shape);

}  // namespace tessera::emu::cudnn_standin
