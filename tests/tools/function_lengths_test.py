#!/usr/bin/env python3
"""tools/function_lengths.py on a fixture whose function lengths are known (their names say
them): every function found, each with the length lizard gives it, braces in comments, strings,
raw strings, lambdas and initializer lists not mistaken for bodies."""
import os
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
tool = os.path.join(here, "..", "..", "tools", "function_lengths.py")
fixture = os.path.join(here, "function_lengths_fixture.cc")
run = subprocess.run([sys.executable, tool, "--max", "0", fixture], capture_output=True, text=True)
found = {}
for line in run.stdout.splitlines():
    where, rest = line.split(": ", 1)
    name, _, count = rest.rpartition(" has ")
    found[name] = int(count.split()[0])
expected = {"free_function_5": 5, "Widget": 5, "method_4": 4, "trailing_3": 3, "raw_7": 7}
problems = [f"{n}: expected {c}, got {found.get(n)}" for n, c in expected.items() if found.get(n) != c]
extra = sorted(set(found) - set(expected))
if extra:
    problems.append(f"not functions, but reported: {extra}")
if run.returncode != 1:
    problems.append(f"exit status {run.returncode} with functions over the limit (expected 1)")
ok = subprocess.run([sys.executable, tool, "--max", "100", fixture], capture_output=True, text=True)
if ok.returncode != 0 or ok.stdout:
    problems.append(f"under the limit: exit {ok.returncode}, output {ok.stdout!r}")
if problems:
    print("\n".join(problems))
    print(run.stdout)
    sys.exit(1)
print(f"function_lengths: {len(found)} functions measured as expected")
