#include "cuda/emu/report.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>

#include "cuda/emu/grid_launch.h"
#include "cuda/emu/standin.h"

namespace tessera::emu {

namespace {

void write_report_at_exit() {
  const char* where = std::getenv("TESSERA_EMU_REPORT");
  if (!where || !*where) return;
  const std::string report = format_report();
  if (std::strcmp(where, "stderr") == 0) {
    std::fputs(report.c_str(), stderr);
    return;
  }
  std::ofstream out(where, std::ios::app);
  if (out)
    out << report;
  else
    std::fprintf(stderr, "tessera: cannot write the CUDA emulator report to %s\n", where);
}

}  // namespace

std::string format_report() {
  return format_kernel_report() + format_standin_report();
}

void write_report_at_exit_once() {
  static std::once_flag once;
  std::call_once(once, [] { std::atexit(&write_report_at_exit); });
}

}  // namespace tessera::emu
