#!/usr/bin/env bash
# Fails when a test skipped for any reason but a GPU one. Only GPU-dependent cases may skip
# without a GPU; a missing dataset or tool must fail instead (TESSERA_REQUIRE_DATA=1), and a
# test that "skips" because its fixture's SetUpTestSuite failed has in fact failed.
#
# Usage: tests/check_skips.sh JUNIT.xml...
#   where each file comes from ctest's --output-junit, e.g.
#     (cd build && ctest --output-junit ctest-junit.xml ...)   # written in the build folder
#     tests/check_skips.sh build/ctest-junit.xml
#   A build folder may be given instead of a file: BUILD/ctest-junit.xml is read.
#
# What counts as a skip: every test ctest reports as not run (skipped by GoogleTest's
# "[  SKIPPED ]", by a SKIP_RETURN_CODE, or by a skip regular expression), and every GoogleTest
# skip inside a test ctest ran as a whole (several cases in one process). A GPU skip is one whose
# message starts with "GPU skip: " (TESSERA_GPU_SKIP, tests/support/skips.h).
# Prints every skip with its reason and a summary line; exits 1 if any skip is not a GPU skip,
# 2 on a usage error or a file that cannot be read.
set -euo pipefail
if [[ $# -eq 0 ]]; then
  echo "usage: $0 JUNIT.xml|BUILD_DIR..." >&2
  exit 2
fi
files=()
for a in "$@"; do
  if [[ -d $a ]]; then a=$a/ctest-junit.xml; fi
  if [[ ! -r $a ]]; then
    echo "check_skips: cannot read $a (run ctest with --output-junit ctest-junit.xml)" >&2
    exit 2
  fi
  files+=("$a")
done
exec python3 - "${files[@]}" <<'PY'
import re
import sys
import xml.etree.ElementTree as ET

GPU_PREFIX = "GPU skip: "
# GoogleTest: "path/file.cpp:LINE: Skipped", the message, then "[  SKIPPED ] Suite.Name (N ms)".
SKIP = re.compile(r"^[^\n]*:\d+: Skipped\n(.*?)^\[  SKIPPED \] (\S+)", re.M | re.S)
SUITE_FAILED = re.compile(r"^\[  FAILED  \] (\S+): SetUpTestSuite or TearDownTestSuite", re.M)

total = bad = gpu = 0
for path in sys.argv[1:]:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        print(f"check_skips: cannot parse {path}: {e}", file=sys.stderr)
        sys.exit(2)
    for case in root.iter("testcase"):
        name = case.get("name", "?")
        out = case.findtext("system-out") or ""
        not_run = case.get("status") == "notrun" or case.find("skipped") is not None
        found = [(m.group(2), m.group(1).strip()) for m in SKIP.finditer(out)]
        for suite in SUITE_FAILED.findall(out):
            found.append((name, f"the set-up of suite {suite} failed (reported as a skip)"))
        if not_run and not found:
            tail = " | ".join(l for l in out.strip().splitlines()[-3:])
            found.append((name, f"skipped by ctest without a GoogleTest skip: {tail or '(no output)'}"))
        for case_name, reason in found:
            total += 1
            # ctest names parameterised cases "Suite.Name/param  # GetParam() = ...".
            label = case_name if name.startswith(case_name) else f"{name} > {case_name}"
            if reason.startswith(GPU_PREFIX):
                gpu += 1
                print(f"  gpu skip   {label}: {reason.splitlines()[0]}")
            else:
                bad += 1
                print(f"  NOT ALLOWED {label}: {reason.splitlines()[0] if reason else '(no message)'}")
print(f"check_skips: {total} skipped, {gpu} GPU skips, {bad} not allowed")
sys.exit(1 if bad else 0)
PY
