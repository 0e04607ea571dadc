// The video task's config: the choice tables and the entry points over the declarations in
// video_config.h.
#include "pipelines/video/video_config.h"

#include "host/config/choices.h"
#include "host/config/entry_points.h"

namespace tessera {

TESSERA_CHOICES(video_generator_choices, VideoGenerator,
                {"moving-fashion-mnist", VideoGenerator::MovingFashionMnist});

TESSERA_CHOICES(video_label_choices, VideoGenLabel, {"class", VideoGenLabel::ItemClass},
                {"direction", VideoGenLabel::Direction});

TESSERA_CONFIG_IO(VideoConfig, parse_video_config, load_video_config, json::read_text_file);

VideoConfig example_video_config() {
  VideoConfig c;
  c.data.generated = true;
  c.data.classes = 4;  // the "direction" label's
  c.layers = example_image_config().layers;
  return c;
}

TESSERA_CONFIG_DOCS(
    video_config_example, video_config_schema, "video",
    "tessera config for \"task\": \"video\": clip classification. A clip's frames are the "
    "CNN's input channels, or (a layer list starting with \"frames_to_batch\" and pooling with "
    "a temporal pool) each frame goes through the CNN alone. Clips come from a folder of class "
    "subfolders (dir) or are generated (generate). pipelines/video/README.md describes every "
    "section.",
    example_video_config(), example_video_config());

}  // namespace tessera
