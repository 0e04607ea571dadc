// The Moving-MNIST-style clip generator.
#include "host/data/moving_clips.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "host/core/error.h"

namespace tessera {

namespace {

// Moves one coordinate a step and reflects it off [0, limit].
void bounce(double& pos, double& vel, double limit) {
  pos += vel;
  if (pos < 0) {
    pos = -pos;
    vel = -vel;
  } else if (pos > limit) {
    pos = 2 * limit - pos;
    vel = -vel;
  }
}

}  // namespace

ImageSet make_moving_clips(const ImageSet& src, const MovingClipOptions& o) {
  TESSERA_CHECK(src.n > 0 && src.channels == 1, "moving clips need grey source images");
  TESSERA_CHECK(o.canvas >= src.height && o.canvas >= src.width, "canvas smaller than an item");
  TESSERA_CHECK(o.frames >= 1 && o.items >= 1 && o.clips >= 1, "empty clip request");
  TESSERA_CHECK(o.min_speed >= 0 && o.max_speed >= o.min_speed, "bad speed range");
  ImageSet out;
  out.n = o.clips;
  out.channels = o.frames;
  out.height = out.width = o.canvas;
  out.pixels.assign(static_cast<size_t>(out.n * out.image_size()), 0.f);
  out.labels.resize(static_cast<size_t>(out.n));
  std::mt19937_64 rng(o.seed);
  std::uniform_int_distribution<int64_t> pick(0, src.n - 1);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const double lim_y = o.canvas - src.height, lim_x = o.canvas - src.width;
  const int64_t frame = static_cast<int64_t>(o.canvas) * o.canvas;
  for (int64_t c = 0; c < o.clips; ++c) {
    float* clip = out.pixels.data() + c * out.image_size();
    for (int it = 0; it < o.items; ++it) {
      const int64_t img = pick(rng);
      double y = unit(rng) * lim_y, x = unit(rng) * lim_x;
      double angle;
      if (o.label == ClipLabel::Direction && it == 0) {
        const int dir = static_cast<int>(rng() % 4);
        angle = dir * M_PI / 2 + (unit(rng) - 0.5) * M_PI / 3;
        out.labels[c] = dir;
      } else {
        angle = unit(rng) * 2 * M_PI;
        if (it == 0) out.labels[c] = src.labels[img];
      }
      const double speed = o.min_speed + unit(rng) * (o.max_speed - o.min_speed);
      double vx = speed * std::cos(angle), vy = speed * std::sin(angle);
      const float* item = src.pixels.data() + img * src.image_size();
      for (int t = 0; t < o.frames; ++t) {
        const int64_t oy = std::lround(y), ox = std::lround(x);
        float* f = clip + t * frame;
        for (int64_t r = 0; r < src.height; ++r)
          for (int64_t q = 0; q < src.width; ++q) {
            float& dst = f[(oy + r) * o.canvas + ox + q];
            dst = std::max(dst, item[r * src.width + q]);
          }
        bounce(y, vy, lim_y);
        bounce(x, vx, lim_x);
      }
    }
  }
  return out;
}

Clip clip_of(const ImageSet& clips, int64_t i) {
  TESSERA_CHECK(i >= 0 && i < clips.n, "clip index");
  Clip c;
  c.frames = clips.channels;
  c.height = clips.height;
  c.width = clips.width;
  c.pixels.assign(clips.pixels.begin() + i * clips.image_size(),
                  clips.pixels.begin() + (i + 1) * clips.image_size());
  return c;
}

}  // namespace tessera
