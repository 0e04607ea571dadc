#!/usr/bin/env bash
# Fails when a test skipped for a reason that is not allowed where it ran.
#
# Usage: tests/check_skips.sh [--on-gpu] [--json FILE] JUNIT.xml...
#   where each file comes from ctest's --output-junit, e.g.
#     (cd build && ctest --output-junit ctest-junit.xml ...)   # written in the build folder
#     tests/check_skips.sh build/ctest-junit.xml
#   A build folder may be given instead of a file: BUILD/ctest-junit.xml is read.
#
# What counts as a skip: every test ctest reports as not run (skipped by GoogleTest's
# "[  SKIPPED ]", by a SKIP_RETURN_CODE, or by a skip regular expression), and every GoogleTest
# skip inside a test ctest ran as a whole (several cases in one process). Each skip is classified
# by its message (tests/support/skips.h, tests/support/gpu_skips.h):
#   needs-gpu        "GPU skip: needs a CUDA device: ..."   (TESSERA_NEEDS_GPU_SKIP)
#   gpu-present      "GPU skip: a CUDA device is usable: ..." (TESSERA_GPU_PRESENT_SKIP: a check
#                    of the no-GPU path, with nothing to check where a GPU is usable)
#   gpu-unclassified any other "GPU skip: ..." (TESSERA_GPU_SKIP called directly)
#   setup-failed     a fixture's SetUpTestSuite failed and GoogleTest reported its tests as
#                    skipped: a failure everywhere
#   other            anything else: a dataset or tool is missing, a case for another build (the
#                    emulator), ctest's own skip without a GoogleTest message
# Without a GPU (CI, the default) only the three GPU kinds are allowed: a missing dataset or tool
# must fail instead (TESSERA_REQUIRE_DATA=1). With --on-gpu (tools/gpu-check.sh, on a machine
# where a CUDA device is usable) needs-gpu and gpu-unclassified are not allowed (the case must run
# there, or say that it skips because the GPU is usable), gpu-present is, and "other" is allowed
# but listed: a dataset that did not travel to the GPU machine is not the GPU's failure, and CI's
# run without --on-gpu already fails on it.
#
# Prints every skip with its kind and reason and a summary line; --json FILE also writes
#   {"on_gpu":bool,"skipped":N,"not_allowed":N,"counts":{KIND:N,...},
#    "skips":[{"test":..,"kind":..,"allowed":bool,"reason":..},...]}
# Exits 1 if any skip is not allowed, 2 on a usage error or a file that cannot be read.
set -euo pipefail
usage() {
  echo "usage: $0 [--on-gpu] [--json FILE] JUNIT.xml|BUILD_DIR..." >&2
  exit 2
}
on_gpu=0
json=""
files=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --on-gpu) on_gpu=1; shift ;;
    --json) [[ $# -ge 2 ]] || usage; json=$2; shift 2 ;;
    -*) echo "check_skips: unknown option '$1'" >&2; usage ;;
    *)
      a=$1
      shift
      if [[ -d $a ]]; then a=$a/ctest-junit.xml; fi
      if [[ ! -r $a ]]; then
        echo "check_skips: cannot read $a (run ctest with --output-junit ctest-junit.xml)" >&2
        exit 2
      fi
      files+=("$a")
      ;;
  esac
done
[[ ${#files[@]} -gt 0 ]] || usage
exec python3 - "$on_gpu" "$json" "${files[@]}" <<'PY'
import json
import re
import sys
import xml.etree.ElementTree as ET

# The phrases of tests/support/skips.h and tests/support/gpu_skips.h.
GPU_PREFIX = "GPU skip: "
NEEDS_GPU = GPU_PREFIX + "needs a CUDA device: "
GPU_PRESENT = GPU_PREFIX + "a CUDA device is usable: "
# GoogleTest: "path/file.cpp:LINE: Skipped", the message, then "[  SKIPPED ] Suite.Name (N ms)".
SKIP = re.compile(r"^[^\n]*:\d+: Skipped\n(.*?)^\[  SKIPPED \] (\S+)", re.M | re.S)
SUITE_FAILED = re.compile(r"^\[  FAILED  \] (\S+): SetUpTestSuite or TearDownTestSuite", re.M)

on_gpu = sys.argv[1] == "1"
json_path = sys.argv[2]
# Which kinds may skip: without a GPU every GPU kind; on the GPU machine only a check of the
# no-GPU path, plus "other" (listed, judged by CI's run without --on-gpu).
ALLOWED = {"gpu-present", "other"} if on_gpu else {"needs-gpu", "gpu-present", "gpu-unclassified"}


def kind_of(reason, setup_failed):
    if setup_failed:
        return "setup-failed"
    if reason.startswith(NEEDS_GPU):
        return "needs-gpu"
    if reason.startswith(GPU_PRESENT):
        return "gpu-present"
    if reason.startswith(GPU_PREFIX):
        return "gpu-unclassified"
    return "other"


def skips_in(path):
    """(label, reason, setup_failed) for every skip in one JUnit file."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        print(f"check_skips: cannot parse {path}: {e}", file=sys.stderr)
        sys.exit(2)
    for case in root.iter("testcase"):
        name = case.get("name", "?")
        out = case.findtext("system-out") or ""
        not_run = case.get("status") == "notrun" or case.find("skipped") is not None
        found = [(m.group(2), m.group(1).strip(), False) for m in SKIP.finditer(out)]
        for suite in SUITE_FAILED.findall(out):
            found.append((name, f"the set-up of suite {suite} failed (reported as a skip)", True))
        if not_run and not found:
            tail = " | ".join(l for l in out.strip().splitlines()[-3:])
            found.append((name, f"skipped by ctest without a GoogleTest skip: {tail or '(no output)'}",
                          False))
        for case_name, reason, setup_failed in found:
            # ctest names parameterised cases "Suite.Name/param  # GetParam() = ...".
            label = case_name if name.startswith(case_name) else f"{name} > {case_name}"
            yield label, reason, setup_failed


skips = []
for path in sys.argv[3:]:
    for label, reason, setup_failed in skips_in(path):
        kind = kind_of(reason, setup_failed)
        skips.append({"test": label, "kind": kind, "allowed": kind in ALLOWED, "reason": reason})

counts = {}
for s in skips:
    counts[s["kind"]] = counts.get(s["kind"], 0) + 1
    first = s["reason"].splitlines()[0] if s["reason"] else "(no message)"
    verdict = "allowed    " if s["allowed"] else "NOT ALLOWED"
    print(f"  {verdict} {s['kind']:<16} {s['test']}: {first}")
bad = sum(1 for s in skips if not s["allowed"])
where = "on a GPU machine" if on_gpu else "without a GPU"
detail = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "none"
print(f"check_skips ({where}): {len(skips)} skipped ({detail}), {bad} not allowed")
if bad and on_gpu and any(s["kind"] == "gpu-unclassified" for s in skips):
    print("check_skips: a GPU skip must say why: TESSERA_NEEDS_GPU_SKIP or TESSERA_GPU_PRESENT_SKIP "
          "(tests/support/gpu_skips.h)")
if json_path:
    with open(json_path, "w") as f:
        json.dump({"on_gpu": on_gpu, "skipped": len(skips), "not_allowed": bad, "counts": counts,
                   "skips": skips}, f)
        f.write("\n")
sys.exit(1 if bad else 0)
PY
