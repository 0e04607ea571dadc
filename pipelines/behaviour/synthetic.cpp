#include "pipelines/behaviour/synthetic.h"

#include <cmath>
#include <random>
#include <sstream>

#include "host/core/atomic_file.h"
#include "host/core/math.h"
#include "pipelines/behaviour/synthetic_files.h"

namespace tessera::behaviour {

namespace {
const char* kDevices[] = {"android", "ios", "desktop", "tablet"};
const char* kRegions[] = {"north", "south", "east", "west", "central", "islands"};
const char* kPlans[] = {"free", "basic", "plus", "pro"};
// Click-probability effects of each category (the planted signal).
const double kDeviceEffect[] = {0.2, 0.6, -0.4, 0.0};
const double kRegionEffect[] = {0.0, -0.3, 0.3, 0.1, -0.1, 0.8};
const double kPlanEffect[] = {-0.8, -0.2, 0.4, 1.0};

std::string make_rows(int64_t n, std::mt19937_64& rng) {
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> uni(0.0, 1.0);
  std::ostringstream out;
  out << "age,sessions,minutes,device,region,plan,clicked\n";
  for (int64_t i = 0; i < n; ++i) {
    const double age = std::round(18 + 50 * uni(rng));
    const double sessions = std::floor(std::exp(1.5 + 0.8 * normal(rng)));
    const double minutes = std::round(10 * std::exp(2 + 0.5 * normal(rng))) / 10;
    const int dev = static_cast<int>(rng() % 4), reg = static_cast<int>(rng() % 6),
              plan = static_cast<int>(rng() % 4);
    // Nonlinear in age (peaks mid-30s), log-linear in sessions, plus the category effects.
    const double z = -0.5 - std::pow((age - 35) / 12, 2) + 0.7 * std::log1p(sessions) - 0.6 +
                     kDeviceEffect[dev] + kRegionEffect[reg] + kPlanEffect[plan] + 0.002 * minutes;
    const int label = uni(rng) < math::sigmoid(static_cast<float>(z)) ? 1 : 0;
    out << age << "," << sessions << "," << minutes << "," << kDevices[dev] << "," << kRegions[reg]
        << "," << kPlans[plan] << "," << label << "\n";
  }
  return out.str();
}
}  // namespace

std::string write_synthetic_dataset(const std::string& dir, const SyntheticOptions& o) {
  make_directories(dir);
  std::mt19937_64 rng(o.seed);
  write_file_atomic(dir + "/train.csv", make_rows(o.train_rows, rng));
  write_file_atomic(dir + "/test.csv", make_rows(o.test_rows, rng));
  std::ostringstream c;
  c << synthetic_config_head("synthetic-mlp", dir, "csv") << "    \"header\": true,\n"
    << "    \"columns\": [\n"
    << "      {\"name\": \"age\", \"type\": \"numeric\"},\n"
    << "      {\"name\": \"sessions\", \"type\": \"numeric\", \"transform\": \"log1p\"},\n"
    << "      {\"name\": \"minutes\", \"type\": \"numeric\", \"transform\": \"log1p\"},\n"
    << "      {\"name\": \"device\", \"type\": \"categorical\"},\n"
    << "      {\"name\": \"region\", \"type\": \"categorical\"},\n"
    << "      {\"name\": \"plan\", \"type\": \"categorical\"},\n"
    << "      {\"name\": \"clicked\", \"type\": \"label\"}\n"
    << "    ]\n  },\n"
    << "  \"model\": {\"hidden\": [64, 32], \"dropout\": 0.1},\n"
    << "  \"train\": {\"epochs\": 5, \"batch_size\": 256}\n"
    << "}\n";
  return write_synthetic_config(dir, c.str());
}

}  // namespace tessera::behaviour
