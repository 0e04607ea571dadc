#pragma once
// Moving (Fashion-)MNIST clips, generated the way Srivastava et al. (2015) made Moving MNIST:
// each of `items` images (28x28 from `source`) starts at a uniform random position inside a
// canvas x canvas frame with a random direction and speed, moves in a straight line and bounces
// off the edges (position reflected, velocity component negated); overlapping items combine by
// maximum. Deterministic in `seed`.
//
// Labels: ItemClass, the first item's class in `source`; Direction, the first item's initial
// heading, one of 4 classes (0 right, 1 down, 2 left, 3 up; the angle is the class's +- 30 deg).
#include <cstdint>

#include "host/data/clip_data.h"
#include "host/data/image_data.h"

namespace tessera {

enum class ClipLabel : uint8_t { ItemClass, Direction };

struct MovingClipOptions {
  int64_t clips = 256;
  int frames = 10;
  int canvas = 64;
  int items = 1;
  ClipLabel label = ClipLabel::ItemClass;
  double min_speed = 2, max_speed = 4;  // pixels per frame
  uint64_t seed = 0;
};

// The clips as an image set with one channel per frame: [clips, frames, canvas, canvas].
ImageSet make_moving_clips(const ImageSet& source, const MovingClipOptions& options);
// Clip `i` of such a set.
Clip clip_of(const ImageSet& clips, int64_t i);

}  // namespace tessera
