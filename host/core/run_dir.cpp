#include "host/core/run_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/core/path_name.h"

namespace tessera {

RunDir RunDir::create(const std::string& runs_dir, const std::string& name) {
  // The config readers refuse such names with their place in the file; this is the last guard.
  if (!is_valid_run_name(name))
    TESSERA_THROW(Config, "run name '" << name << "' cannot name a run directory: use letters, "
                                       << "digits, '.', '_' and '-' (at most 200)");
  make_directories(runs_dir);
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
  const std::string base = runs_dir + "/" + name + "-" + stamp;
  for (int i = 0; i < 1000; ++i) {
    std::string p = i == 0 ? base : base + "-" + std::to_string(i);
    if (::mkdir(p.c_str(), 0755) == 0) return RunDir(p);
    if (errno != EEXIST)
      TESSERA_THROW(Io, "cannot create run directory '" << p << "': " << std::strerror(errno));
  }
  TESSERA_THROW(Io, "cannot find a free run directory name under '" << runs_dir << "'");
}

RunDir RunDir::create_exact(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash != std::string::npos && slash > 0) make_directories(path.substr(0, slash));
  if (::mkdir(path.c_str(), 0755) != 0)
    TESSERA_THROW(Io, "cannot create run directory '"
                          << path << "': " << std::strerror(errno)
                          << (errno == EEXIST ? " (runs never share a directory)" : ""));
  return RunDir(path);
}

}  // namespace tessera
