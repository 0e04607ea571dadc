#include "cuda/emu/grid_launch.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <map>
#include <mutex>
#include <sstream>

#include "cuda/emu/device_memory.h"
#include "host/core/error.h"
#include "host/core/named_records.h"

namespace tessera::emu {

namespace {

thread_local std::vector<std::string>* t_launch_sink = nullptr;

// ---- checks ------------------------------------------------------------------------------------

EmulatorChecks parse_checks(const char* env) {
  EmulatorChecks c;
  if (!env || !*env) return c;
  std::string s(env);
  if (s == "all") return c;
  c = EmulatorChecks{false, false, false};
  if (s == "none") return c;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item == "schedule")
      c.schedule = true;
    else if (item == "shared_races")
      c.shared_races = true;
    else if (item == "pointer_args")
      c.pointer_args = true;
    else if (!item.empty())
      TESSERA_THROW(Config, "TESSERA_EMU_CHECKS='" << s << "': unknown check '" << item
                                                   << "'; expected all, none, or a comma list of "
                                                      "schedule, shared_races, pointer_args");
  }
  return c;
}

struct ChecksState {
  std::mutex mutex;
  bool initialised = false;
  EmulatorChecks checks;
  std::map<std::string, std::string> exemptions;
};
ChecksState& checks_state() {
  static ChecksState* s = new ChecksState();
  return *s;
}

// ---- configuration -----------------------------------------------------------------------------

void check_configuration(const LaunchRequest& r) {
  const dim3 g = r.grid, b = r.block;
  std::ostringstream why;
  const uint64_t threads = uint64_t{b.x} * b.y * b.z;
  if (g.x == 0 || g.y == 0 || g.z == 0)
    why << "grid " << dim_str(g) << " has a zero dimension";
  else if (b.x == 0 || b.y == 0 || b.z == 0)
    why << "block " << dim_str(b) << " has a zero dimension";
  else if (g.x > 2147483647u || g.y > 65535u || g.z > 65535u)
    why << "grid " << dim_str(g) << " exceeds (2147483647, 65535, 65535)";
  else if (b.x > 1024u || b.y > 1024u || b.z > 64u)
    why << "block " << dim_str(b) << " exceeds (1024, 1024, 64)";
  else if (threads > 1024u)
    why << "block " << dim_str(b) << " has " << threads << " threads, more than 1024";
  else if (r.dynamic_smem > detail::max_dynamic_smem(r.kernel_address))
    why << r.dynamic_smem << " bytes of dynamic shared memory exceed the kernel's limit of "
        << detail::max_dynamic_smem(r.kernel_address) << " (48 KiB minus its "
        << detail::static_smem(r.kernel_address)
        << " bytes of static shared memory unless raised with cudaFuncSetAttribute(kernel, "
           "cudaFuncAttributeMaxDynamicSharedMemorySize, bytes); static + dynamic at most "
           "232448)";
  const std::string w = why.str();
  if (!w.empty())
    TESSERA_THROW(Backend, "kernel "
                               << r.kernel
                               << ": invalid launch configuration (cudaErrorInvalidConfiguration): "
                               << w);
}

void check_pointer_args(const LaunchRequest& r) {
  for (const PointerArgument& a : r.pointer_args) {
    if (a.value == nullptr) continue;
    if (!find_device_allocation(a.value))
      TESSERA_THROW(Backend, "kernel " << r.kernel << ": argument " << a.index << " (" << a.value
                                       << ") does not point into device memory; on a GPU this "
                                          "is an illegal address (a host pointer passed to a "
                                          "kernel?)");
  }
}

// ---- the schedule check ------------------------------------------------------------------------

struct Snapshot {
  DeviceAllocationInfo info;
  std::vector<unsigned char> bytes;
};

std::vector<DeviceAllocationInfo> reachable_allocations(const LaunchRequest& r) {
  if (r.has_aggregate_args) return all_device_allocations();
  std::vector<DeviceAllocationInfo> out;
  for (const PointerArgument& a : r.pointer_args) {
    if (!a.value) continue;
    auto info = find_device_allocation(a.value);
    if (!info) continue;
    // Raw cudaMalloc memory (the backend's allocator) carries no element kind: a typed pointer
    // argument into it gives one.
    if (info->kind == ElementKind::Bytes) info->kind = a.kind;
    bool seen = false;
    for (auto& o : out) {
      if (o.base != info->base) continue;
      seen = true;
      if (o.kind == ElementKind::Bytes) o.kind = info->kind;
    }
    if (!seen) out.push_back(*info);
  }
  return out;
}

std::vector<Snapshot> take_snapshots(const std::vector<DeviceAllocationInfo>& allocs) {
  std::vector<Snapshot> out;
  out.reserve(allocs.size());
  for (const auto& a : allocs)
    out.push_back(Snapshot{a, std::vector<unsigned char>(a.base, a.base + a.bytes)});
  return out;
}

void restore(const std::vector<Snapshot>& snaps) {
  for (const Snapshot& s : snaps)
    if (!s.bytes.empty())
      std::memcpy(const_cast<unsigned char*>(s.info.base), s.bytes.data(), s.bytes.size());
}

bool floats_agree(float a, float b) {
  if (std::memcmp(&a, &b, sizeof(float)) == 0) return true;
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  const float scale = std::max(std::fabs(a), std::fabs(b));
  return std::fabs(a - b) <= 1e-5f + 1e-4f * scale;
}

size_t element_bytes(ElementKind k) {
  switch (k) {
    case ElementKind::F32:
    case ElementKind::I32:
      return 4;
    case ElementKind::F64:
    case ElementKind::I64:
      return 8;
    default:
      return 1;
  }
}

std::string element_str(ElementKind k, const unsigned char* p) {
  std::ostringstream s;
  switch (k) {
    case ElementKind::F32: {
      float v;
      std::memcpy(&v, p, 4);
      s << std::setprecision(9) << v;
      break;
    }
    case ElementKind::F64: {
      double v;
      std::memcpy(&v, p, 8);
      s << std::setprecision(17) << v;
      break;
    }
    case ElementKind::I32: {
      int32_t v;
      std::memcpy(&v, p, 4);
      s << v;
      break;
    }
    case ElementKind::I64: {
      int64_t v;
      std::memcpy(&v, p, 8);
      s << v;
      break;
    }
    default:
      s << "0x" << std::hex << static_cast<unsigned>(*p);
      break;
  }
  return s.str();
}

// "" when the forward results and the memory now (after the reverse run) agree.
std::string compare_runs(const std::vector<Snapshot>& forward) {
  for (const Snapshot& f : forward) {
    const unsigned char* now = f.info.base;
    const size_t eb = element_bytes(f.info.kind);
    const size_t n = f.bytes.size() / eb;
    size_t differing = 0, first = 0;
    for (size_t i = 0; i < n; ++i) {
      bool same;
      if (f.info.kind == ElementKind::F32) {
        float a, b;
        std::memcpy(&a, f.bytes.data() + i * 4, 4);
        std::memcpy(&b, now + i * 4, 4);
        same = floats_agree(a, b);
      } else {
        same = std::memcmp(f.bytes.data() + i * eb, now + i * eb, eb) == 0;
      }
      if (!same && differing++ == 0) first = i;
    }
    if (differing) {
      std::ostringstream msg;
      msg << "allocation '" << f.info.label << "' (" << element_kind_name(f.info.kind) << ", "
          << f.info.bytes << " bytes) element " << first << ": "
          << element_str(f.info.kind, f.bytes.data() + first * eb) << " in forward order, "
          << element_str(f.info.kind, now + first * eb) << " in reverse order";
      if (differing > 1) msg << " (" << differing << " elements differ)";
      return msg.str();
    }
  }
  return "";
}

void check_guards(const LaunchRequest& r, const std::vector<DeviceAllocationInfo>& allocs) {
  for (const DeviceAllocationInfo& a : allocs) {
    const std::string bad = check_and_repair_guards(a);
    if (!bad.empty()) TESSERA_THROW(Backend, "kernel " << r.kernel << ": " << bad);
  }
}

void run_grid(const LaunchRequest& r, ScheduleOrder order, bool race_check, BlockCounters& c) {
  BlockLaunch bl;
  bl.kernel = r.kernel;
  bl.grid = r.grid;
  bl.block = r.block;
  bl.dynamic_smem = r.dynamic_smem;
  bl.body = r.body;
  bl.shared_race_check = race_check && r.dynamic_smem > 0;
  BlockRunner& runner = BlockRunner::for_this_thread();
  const uint64_t gx = r.grid.x, gy = r.grid.y, gz = r.grid.z;
  const uint64_t total = gx * gy * gz;
  for (uint64_t k = 0; k < total; ++k) {
    const uint64_t lin = order == ScheduleOrder::Forward ? k : total - 1 - k;
    const uint3 bidx{static_cast<unsigned>(lin % gx), static_cast<unsigned>((lin / gx) % gy),
                     static_cast<unsigned>(lin / (gx * gy))};
    runner.run_block(bl, bidx, order, c);
  }
}

void record(const LaunchRequest& r, const BlockCounters& c, bool schedule_checked,
            const std::string& exemption, const std::string& error) {
  NamedRecords<KernelStats>& s = process_records<KernelStats>();
  std::lock_guard<std::mutex> lock(s.mutex);
  KernelStats& k = s.by_name[r.kernel];
  k.kernel = r.kernel;
  ++k.launches;
  k.blocks += uint64_t{r.grid.x} * r.grid.y * r.grid.z;
  k.threads += c.threads;
  k.barriers += c.barriers;
  k.warp_collectives += c.warp_collectives;
  if (schedule_checked) ++k.schedule_checked;
  if (!exemption.empty()) k.schedule_exemption = exemption;
  if (!error.empty()) {
    ++k.failed_launches;
    if (k.first_error.empty()) k.first_error = error;
  }
}

}  // namespace

EmulatorChecks checks() {
  ChecksState& s = checks_state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!s.initialised) {
    s.checks = parse_checks(std::getenv("TESSERA_EMU_CHECKS"));
    s.initialised = true;
  }
  return s.checks;
}

void set_checks(const EmulatorChecks& c) {
  ChecksState& s = checks_state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.checks = c;
  s.initialised = true;
}

void exempt_from_schedule_check(const std::string& kernel, const std::string& reason) {
  ChecksState& s = checks_state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.exemptions[kernel] = reason;
}

void set_launch_sink(std::vector<std::string>* sink) {
  t_launch_sink = sink;
}

void validate_launch(const LaunchRequest& r) {
  if (BlockRunner::inside_kernel())
    TESSERA_THROW(Usage, "kernel " << r.kernel
                                   << " launched from inside an emulated kernel (dynamic "
                                      "parallelism is not supported)");
  if (t_launch_sink) t_launch_sink->push_back(r.kernel);
  try {
    check_configuration(r);
    if (checks().pointer_args) check_pointer_args(r);
  } catch (const Error& e) {
    record(r, BlockCounters{}, false, "", e.what());
    throw;
  }
}

void launch(const LaunchRequest& r) {
  if (BlockRunner::inside_kernel())
    TESSERA_THROW(Usage, "kernel " << r.kernel
                                   << " launched from inside an emulated kernel (dynamic "
                                      "parallelism is not supported)");
  const EmulatorChecks c = checks();
  std::string exemption;
  {
    ChecksState& s = checks_state();
    std::lock_guard<std::mutex> lock(s.mutex);
    auto it = s.exemptions.find(r.kernel);
    if (it != s.exemptions.end()) exemption = it->second;
  }
  BlockCounters counters;
  bool schedule_checked = false;
  try {
    check_configuration(r);
    if (c.pointer_args) check_pointer_args(r);
    const std::vector<DeviceAllocationInfo> reachable = reachable_allocations(r);
    if (c.schedule && exemption.empty()) {
      const std::vector<Snapshot> before = take_snapshots(reachable);
      run_grid(r, ScheduleOrder::Forward, c.shared_races, counters);
      check_guards(r, reachable);
      std::vector<Snapshot> forward;
      forward.reserve(before.size());
      for (const Snapshot& b : before)
        forward.push_back(
            Snapshot{b.info, std::vector<unsigned char>(b.info.base, b.info.base + b.info.bytes)});
      restore(before);
      BlockCounters reverse_counters;
      run_grid(r, ScheduleOrder::Reverse, c.shared_races, reverse_counters);
      check_guards(r, reachable);
      schedule_checked = true;
      const std::string diff = compare_runs(forward);
      if (!diff.empty())
        TESSERA_THROW(Backend, "kernel " << r.kernel
                                         << ": result depends on the order threads run (schedule "
                                            "check: forward vs reverse block and thread order): "
                                         << diff
                                         << ". A missing __syncthreads()/__syncwarp() before "
                                            "reading what another thread wrote, or a race "
                                            "between threads, makes the result "
                                            "schedule-dependent; on a GPU the order is arbitrary "
                                            "too.");
    } else {
      run_grid(r, ScheduleOrder::Forward, c.shared_races, counters);
      check_guards(r, reachable);
    }
  } catch (const Error& e) {
    record(r, counters, schedule_checked, exemption, e.what());
    throw;
  }
  record(r, counters, schedule_checked, exemption, "");
}

std::vector<KernelStats> kernel_stats() {
  return process_records<KernelStats>().values();
}

void reset_kernel_stats() {
  NamedRecords<KernelStats>& s = process_records<KernelStats>();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.by_name.clear();
}

std::string format_kernel_report() {
  const std::vector<KernelStats> stats = kernel_stats();
  std::ostringstream out;
  out << "CUDA emulator kernel report (" << stats.size() << " kernels)\n";
  out << std::left << std::setw(36) << "kernel" << std::right << std::setw(9) << "launches"
      << std::setw(9) << "failed" << std::setw(10) << "blocks" << std::setw(12) << "threads"
      << std::setw(10) << "barriers" << std::setw(11) << "warp-ops" << std::setw(10) << "sched-chk"
      << "  result\n";
  for (const KernelStats& k : stats) {
    out << std::left << std::setw(36) << k.kernel << std::right << std::setw(9) << k.launches
        << std::setw(9) << k.failed_launches << std::setw(10) << k.blocks << std::setw(12)
        << k.threads << std::setw(10) << k.barriers << std::setw(11) << k.warp_collectives
        << std::setw(10) << k.schedule_checked << "  "
        << (k.failed_launches ? "FAILED: " + k.first_error : std::string("ok"));
    if (!k.schedule_exemption.empty())
      out << " (schedule check skipped: " << k.schedule_exemption << ")";
    out << "\n";
  }
  return out.str();
}

}  // namespace tessera::emu
