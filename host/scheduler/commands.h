#pragma once
// The scheduler's CLI commands, task-neutral (the CLI passes the registry with every task's
// stage kinds):
//   tessera run PIPELINE.json [--dry-run]   runs (or plans) a pipeline
//   tessera runs [--runs-dir DIR]           lists run directories with their headline metrics
//   tessera report RUN_DIR                  writes RUN_DIR/report.html: self-contained HTML,
//                                           training/validation curves as inline SVG from
//                                           metrics.jsonl, the final metrics, the config
#include <string>

#include "host/core/command_result.h"
#include "host/scheduler/scheduler.h"

namespace tessera::scheduler {

using CommandResult = ::tessera::CommandResult;

enum class Execution : uint8_t { Run, DryRun };

CommandResult run_command(const std::string& pipeline_path, const StageRegistry& registry,
                          const RunOptions& options, Execution execution);
CommandResult runs_command(const std::string& runs_dir);
CommandResult report_command(const std::string& run_dir);

// The report page for a run directory (exposed for tests).
std::string render_report_html(const std::string& run_dir);

}  // namespace tessera::scheduler
