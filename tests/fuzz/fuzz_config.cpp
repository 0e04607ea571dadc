// Fuzz target: the JSON config reader (host/config/json_reader.h) through every task's config:
// the first byte picks the reader, the rest is the config's text.
//   0 behaviour   1 image   2 audio   3 video   4 recommend   5 textclass
//   6 a CNN layer list and 7 an audio feature object (as a model file's metadata holds them)
//   8 textgen
// Invariants checked: a config that parses writes out (to_json) as a config that parses again to
// the same resolved JSON; for behaviour, parse(to_json(c)) == c as its header promises.
#include <cstdint>
#include <string>

#include "host/config/json_writer.h"
#include "pipelines/audio/audio_config.h"
#include "pipelines/behaviour/behaviour_config.h"
#include "pipelines/image/image_config.h"
#include "pipelines/recommend/recommend_config.h"
#include "pipelines/textclass/textclass_config.h"
#include "pipelines/textgen/textgen.h"
#include "pipelines/video/video_config.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using namespace tessera;

const char* const kSource = "fuzz/config.json";

// to_json of a parsed config must parse back to the same resolved JSON.
template <typename Parse>
void round_trip(const std::string& resolved, Parse&& parse) {
  const std::string again = to_json(parse(resolved));
  fuzz::check(again == resolved, "to_json(parse(to_json(c))) differs from to_json(c)");
}

void run(uint8_t which, const std::string& text) {
  switch (which % 9) {
    case 0: {
      const BehaviourConfig c = parse_behaviour_config(text, kSource);
      const BehaviourConfig back = parse_behaviour_config(to_json(c), kSource);
      fuzz::check(back == c, "behaviour: parse(to_json(c)) != c");
      break;
    }
    case 1:
      round_trip(to_json(parse_image_config(text, kSource)),
                 [](const std::string& t) { return parse_image_config(t, kSource); });
      break;
    case 2:
      round_trip(to_json(parse_audio_config(text, kSource)),
                 [](const std::string& t) { return parse_audio_config(t, kSource); });
      break;
    case 3:
      round_trip(to_json(parse_video_config(text, kSource)),
                 [](const std::string& t) { return parse_video_config(t, kSource); });
      break;
    case 4:
      round_trip(
          recommend::to_json(recommend::parse_recommend_config(text, kSource)),
          [](const std::string& t) { return recommend::parse_recommend_config(t, kSource); });
      break;
    case 5: {
      static fuzz::TempFile tmp("config");
      round_trip(
          textclass::to_json(textclass::read_textclass_config(tmp.write(text))),
          [](const std::string& t) { return textclass::read_textclass_config(tmp.write(t)); });
      break;
    }
    case 6: {
      const std::vector<CnnLayerSpec> layers = parse_layers(text);
      json::JsonWriter w;
      write_layers(w, layers);
      const std::string written = w.compact();
      json::JsonWriter w2;
      write_layers(w2, parse_layers(written));
      fuzz::check(w2.compact() == written, "CNN layers: write(parse(write(l))) != write(l)");
      break;
    }
    case 8: {
      const std::string resolved = textgen::resolved_config(text, kSource);
      fuzz::check(textgen::resolved_config(resolved, kSource) == resolved,
                  "textgen: resolve(resolve(c)) != resolve(c)");
      break;
    }
    default: {  // 7
      const AudioFeatureConfig f = parse_audio_features(text);
      json::JsonWriter w;
      write_audio_features(w, f);
      json::JsonWriter w2;
      write_audio_features(w2, parse_audio_features(w.compact()));
      fuzz::check(w2.compact() == w.compact(),
                  "audio features: write(parse(write(f))) != write(f)");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::ByteReader in(data, size);
  const uint8_t which = in.byte();
  const std::string text(in.rest());
  fuzz::expect_input_errors([&] { run(which, text); });
  return 0;
}
