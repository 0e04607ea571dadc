#!/usr/bin/env python3
"""Checks `tessera config TASK --schema` and `--example` with a validator we did not write.

usage: config_schema_check.py TESSERA_BINARY SOURCE_DIR

For every task of the build (`tessera --help` lists them after "tasks ("; a task with no declared
config fails here, it does not skip):
  - the schema is itself a valid JSON Schema, draft 2020-12 (python3-jsonschema's meta-schema);
  - every config shipped under pipelines/ whose "task" is that task validates against it;
  - the example (comments stripped) validates against it, and every property the schema names
    appears in the example, live or commented out.
Prints one line per check and exits 1 on the first failure of each task (all tasks are checked).
"""
import json
import pathlib
import re
import subprocess
import sys

import jsonschema


def run(binary, *args):
    out = subprocess.run([binary, *args], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {out.returncode}: {out.stderr.strip()}")
    return out.stdout


def strip_comments(text):
    """JSON with // and /* */ comments (as tessera reads configs) -> strict JSON."""
    out, i, n, in_string = [], 0, len(text), False
    while i < n:
        c = text[i]
        if in_string:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
            out.append(c)
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


def property_names(schema, prefix=""):
    for key, sub in schema.get("properties", {}).items():
        yield prefix + key
        yield from property_names(sub, prefix + key + ".")


def tasks_of(binary):
    usage = run(binary, "--help")
    if "\ntasks (" not in usage:
        raise RuntimeError("tessera --help lists no tasks:\n" + usage)
    section = usage.split("\ntasks (", 1)[1]
    tasks = re.findall(r"^  ([a-z_]+)\s{2,}", section, re.MULTILINE)
    if not tasks:
        raise RuntimeError("tessera --help lists no tasks:\n" + usage)
    return tasks


def shipped_configs(source_dir):
    by_task = {}
    for path in sorted(pathlib.Path(source_dir, "pipelines").glob("*/*.json")):
        try:
            doc = json.loads(strip_comments(path.read_text()))
        except json.JSONDecodeError as e:
            raise RuntimeError(f"{path}: not JSON: {e}")
        if isinstance(doc, dict) and isinstance(doc.get("task"), str) and "stages" not in doc:
            by_task.setdefault(doc["task"], []).append((path, doc))
    return by_task


def check_task(binary, task, configs):
    schema = json.loads(run(binary, "config", task, "--schema"))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    print(f"{task}: schema is valid draft 2020-12")
    for path, doc in configs:
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
        if errors:
            raise RuntimeError(f"{path}: " + "; ".join(
                f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors))
        print(f"{task}: {path.name} validates")
    example = run(binary, "config", task, "--example")
    live = json.loads(strip_comments(example))
    errors = list(validator.iter_errors(live))
    if errors:
        raise RuntimeError(f"{task} example: " + "; ".join(e.message for e in errors))
    for name in property_names(schema):
        leaf = name.rsplit(".", 1)[-1]
        if f'"{leaf}"' not in example:
            raise RuntimeError(f"{task} example does not show {name}")
    print(f"{task}: example validates and shows every property")


def main():
    binary, source_dir = sys.argv[1], sys.argv[2]
    configs = shipped_configs(source_dir)
    failed = []
    for task in tasks_of(binary):
        try:
            check_task(binary, task, configs.get(task, []))
        except Exception as e:  # every task is checked; each failure is reported
            print(f"FAIL {task}: {e}")
            failed.append(task)
    if failed:
        print("failed: " + ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
