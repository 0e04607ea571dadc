// Fuzz target: model files (model.tsm, host/core/archive.h) as each task's deploy command reads
// one, from the archive through the task's header reader and the checks of the header against
// the stored tensors to the model built from it and one prediction on a fixed small input:
//   0 behaviour  `tessera predict` on a 4-column CSV (load_model, make_net, restore, scoring)
//   1 recommend  `tessera recommend --k 2` (load_rec_artefact, Scorer, top-K over every user)
//   2 textgen    `tessera generate --length 2` (header, tokenizer, LSTM language model)
//   3 textclass  `tessera predict` on one line of text (vocabulary, LSTM classifier)
//   4 image      `tessera predict` on a 4x4 PGM (CNN from the layer list, resize, top 3)
//   5 audio      `tessera predict` on a 0.1 s WAV (the front end in the header, log-mel, CNN)
//   6 video      `tessera predict` on a 3-frame 12x12 .tclip (clip fitting, CNN)
// Models are built with the batch the command uses (1 image / clip / recording; predict's
// --batch-size 4 for behaviour); the batch sizes a config may ask for are bounded by the
// config's limits, not by the file.
//
// Input: 2 option bytes, then the file's bytes without its last 4 (the CRC-32).
//   0      the task, modulo 7
//   1      bit 0: keep the bytes as they are (no CRC appended), so the CRC check is fuzzed too
// Invariants checked: nothing escapes but input errors (every predict path checks its own
// results: probabilities, top-K lists).
#include <zlib.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "host/core/atomic_file.h"
#include "host/data/clip_data.h"
#include "pipelines/audio/audio.h"
#include "pipelines/behaviour/behaviour.h"
#include "pipelines/image/image.h"
#include "pipelines/recommend/recommend.h"
#include "pipelines/textclass/textclass.h"
#include "pipelines/textgen/textgen.h"
#include "pipelines/video/video.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using namespace tessera;

std::string with_crc(std::string bytes) {
  const uint32_t crc = static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
  bytes.append(reinterpret_cast<const char*>(&crc), 4);
  return bytes;
}

// A mono 16-bit WAV of n samples of a 440 Hz tone at `rate`.
std::string wav_tone(int rate, int n) {
  auto put = [](std::string& s, uint32_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) s += static_cast<char>((v >> (8 * i)) & 255);
  };
  std::string d;
  for (int i = 0; i < n; ++i)
    put(d, static_cast<uint16_t>(static_cast<int16_t>(8000 * std::sin(i * 0.3456))), 2);
  std::string h = "RIFF";
  put(h, static_cast<uint32_t>(36 + d.size()), 4);
  h += "WAVEfmt ";
  put(h, 16, 4);
  put(h, 1, 2);
  put(h, 1, 2);
  put(h, static_cast<uint32_t>(rate), 4);
  put(h, static_cast<uint32_t>(rate * 2), 4);
  put(h, 2, 2);
  put(h, 16, 2);
  h += "data";
  put(h, static_cast<uint32_t>(d.size()), 4);
  return h + d;
}

// The fixed inputs each task predicts on, written once.
struct Inputs {
  fuzz::TempFile csv{"tsm-input-csv"}, text{"tsm-input-text"}, pgm{"tsm-input-pgm"};
  fuzz::TempFile wav{"tsm-input-wav"}, clip{"tsm-input-tclip"}, out{"tsm-output"};
  Inputs() {
    csv.write("1,a,p,yes\n3,b,q,no\n");
    text.write("the film was great\n");
    pgm.write(std::string("P5 4 4 255\n") + std::string(16, '\x80'));
    wav.write(wav_tone(8000, 800));
    Clip c;
    c.frames = 3;
    c.height = c.width = 12;
    c.pixels.assign(static_cast<size_t>(c.size()), 0.25f);
    write_clip_tensor(clip.path(), c);
  }
};

void predict(int task, const std::string& model, const Inputs& in) {
  image::Options io;
  io.device = "cpu";
  io.quiet = true;
  switch (task) {
    case 0: {
      behaviour::PredictOptions o;
      o.device = "cpu";
      o.quiet = true;
      o.batch_size = 4;
      behaviour::predict(model, in.csv.path(), in.out.path(), o);
      break;
    }
    case 1: {
      recommend::RecommendOptions o;
      o.k = 2;
      o.quiet = true;
      recommend::recommend(model, in.out.path(), o);
      break;
    }
    case 2: {
      textgen::GenerateOptions o;
      o.length = 2;
      o.prompt = "th";
      textgen::generate(model, o, [](const std::string&) {});
      break;
    }
    case 3: {
      textclass::RunOptions o;
      o.quiet = true;
      textclass::predict(model, in.text.path(), in.out.path(), o);
      break;
    }
    case 4:
      image::predict(model, in.pgm.path(), io, 3);
      break;
    case 5:
      audio::predict(model, in.wav.path(), io, 3);
      break;
    default:
      video::predict(model, in.clip.path(), io, 3);
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Inputs inputs;
  static fuzz::TempFile model("tsm");
  fuzz::ByteReader in(data, size);
  const int task = in.byte() % 7;
  const uint8_t flags = in.byte();
  const std::string raw(in.rest());
  model.write((flags & 1) != 0 ? raw : with_crc(raw));
  fuzz::expect_input_errors([&] { predict(task, model.path(), inputs); });
  return 0;
}
