#pragma once
// The emulator's report: which custom kernels ran and how (grid_launch.h's kernel table), and which
// vendor entry points (cuBLAS, cuDNN, CUB/Thrust stand-ins) were called with the documented rules
// their stand-ins checked (standin.h). With TESSERA_EMU_REPORT=stderr (or a file path) in the
// environment it is written when the process exits.
#include <string>

namespace tessera::emu {

std::string format_report();

// Registers the exit-time write once; the runtime calls it when a stream is first created.
void write_report_at_exit_once();

}  // namespace tessera::emu
