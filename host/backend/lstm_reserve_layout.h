#pragma once
// The reserve layout both host LSTM implementations share (host_lstm.cpp, host_lstm_dnnl.cpp):
// per layer, the dropped input (layers >= 1, with dropout), the output (every layer but the top
// one, whose output is io.y), then the regions of the implementation's own. One pass either
// counts the floats (no base) or also hands out each layer's pointers.
#include <cstdint>
#include <vector>

#include "host/backend/lstm_types.h"

namespace tessera {

// Consecutive float regions of one buffer, each starting at a multiple of `align` floats.
class ReserveCursor {
 public:
  ReserveCursor(float* base, int64_t align) : base_(base), align_(align) {}
  // The next region of n floats (null when only counting).
  float* take(int64_t n) {
    float* p = base_ ? base_ + at_ : nullptr;
    at_ += (n + align_ - 1) / align_ * align_;
    return p;
  }
  int64_t floats() const { return at_; }

 private:
  float* base_;
  int64_t align_;
  int64_t at_ = 0;
};

// Layer: a struct of region pointers with members x and y. take_own(l, cursor, layer) takes
// layer l's own regions. Returns the floats of the whole reserve; with `layers`, fills one Layer
// per LSTM layer (its pointers null when base is).
template <typename Layer, typename TakeOwn>
int64_t lstm_reserve_layout(const LstmConfig& c, bool dropout, int64_t t, int64_t b, float* base,
                            int64_t align, std::vector<Layer>* layers, TakeOwn take_own) {
  ReserveCursor cursor(base, align);
  if (layers) layers->assign(c.num_layers, Layer{});
  for (int64_t l = 0; l < c.num_layers; ++l) {
    Layer r;
    if (l >= 1 && dropout) r.x = cursor.take(t * b * c.layer_input_size(l));
    if (l < c.num_layers - 1) r.y = cursor.take(t * b * c.dirs() * c.hidden_size);
    take_own(l, cursor, r);
    if (layers) (*layers)[l] = r;
  }
  return cursor.floats();
}

}  // namespace tessera
