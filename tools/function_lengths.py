#!/usr/bin/env python3
"""Lists C++/CUDA functions longer than a limit, for tools/check_function_length.sh.

    tools/function_lengths.py [--max N] PATH...     (directories are searched for source files)

A function's length is counted as lizard counts it: from the line of its name to the line of its
closing brace, comments and blank lines included. Function bodies are found by a scanner, not a
compiler: comments, string and character literals (raw strings too) are blanked first, then
every '{' at namespace or class scope is classified from the text before it since the last ';',
'{' or '}': a parameter list ')' followed only by qualifiers, a trailing return type or a
constructor's initializer list makes it a function body; 'namespace', 'extern "C"', 'class',
'struct', 'union' and 'enum' open scopes searched further; anything else (an initializer) is
skipped whole. Braces inside a body (blocks, lambdas, initializers) belong to that function.
Prints "path:line: name has N lines" per function over the limit; exits 1 when there is one.
No dependencies beyond Python 3, so it runs on a fresh machine without network access.
"""
import os
import re
import sys

SOURCE_SUFFIXES = (".cpp", ".cc", ".h", ".hpp", ".cu", ".cuh")
QUALIFIERS = {"const", "noexcept", "override", "final", "mutable", "volatile", "&", "&&",
              "throw", "try"}
CONTROL = {"if", "for", "while", "switch", "catch", "do", "else", "return"}


def blank_literals(text):
    """Comments, string and char literals replaced by spaces (newlines kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "R" and text.startswith('R"', i) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'R"([^()\\ ]{0,16})\(', text[i:])
            if not m:
                out.append(c)
                i += 1
                continue
            end = text.find(")" + m.group(1) + '"', i + m.end())
            j = n if end < 0 else end + len(m.group(1)) + 2
            out.append('""' + re.sub(r"[^\n]", " ", text[i + 2:j]))
            i = j
        elif c in "\"'":
            if c == "'" and i > 0 and text[i - 1].isalnum():  # digit separator: 1'000'000
                out.append(" ")
                i += 1
                continue
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + " " * max(0, j - i - 2) + c if j - i >= 2 else c)
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def strip_preprocessor(text):
    """Preprocessor lines (with their continuations) blanked."""
    lines = text.split("\n")
    cont = False
    for k, line in enumerate(lines):
        if cont or line.lstrip().startswith("#"):
            cont = line.rstrip().endswith("\\")
            lines[k] = ""
    return "\n".join(lines)


def matching_paren_start(header, close):
    """Index of the '(' matching the ')' at `close` in `header`, or -1."""
    depth = 0
    for k in range(close, -1, -1):
        if header[k] == ")":
            depth += 1
        elif header[k] == "(":
            depth -= 1
            if depth == 0:
                return k
    return -1


def function_name(header):
    """The name before the parameter list of a function header, and the header offset of the
    name, or None when `header` is not a function definition's header."""
    h = header.rstrip()
    # A constructor's initializer list: cut at the ':' that follows the parameter list.
    depth = 0
    for k, ch in enumerate(h):
        if ch in "([<":
            depth += 1
        elif ch in ")]>":
            depth -= 1
        elif ch == ":" and depth == 0 and h[k - 1:k + 1] != "::" and h[k:k + 2] != "::":
            if h[:k].rstrip().endswith(")"):
                h = h[:k].rstrip()
                break
    # Trailing return type: '-> T'.
    arrow = h.rfind("->")
    if arrow > 0 and h[:arrow].rstrip().endswith(")") or (arrow > 0 and re.search(r"\)\s*(const|noexcept|mutable)?\s*$", h[:arrow])):
        h = h[:arrow].rstrip()
    # Qualifiers after the parameter list.
    while True:
        m = re.search(r"(\b[A-Za-z_]\w*|&&|&)\s*$", h)
        if m and m.group(1) in QUALIFIERS:
            h = h[:m.start()].rstrip()
            continue
        m2 = re.search(r"\bnoexcept\s*\([^()]*\)\s*$", h)
        if m2:
            h = h[:m2.start()].rstrip()
            continue
        break
    if not h.endswith(")"):
        return None
    open_at = matching_paren_start(h, len(h) - 1)
    if open_at <= 0:
        return None
    before = h[:open_at].rstrip()
    m = re.search(r"(operator\s*(\(\s*\)|[^\s\w(]+|\w[\w\s:<>,*&]*?)|~?[A-Za-z_]\w*(\s*<[^<>]*>)?)\s*$", before)
    if not m:
        return None
    name = m.group(0).strip()
    first = name.split("<")[0].split()[0] if name else ""
    if first in CONTROL or first in {"sizeof", "decltype", "alignof", "static_assert", "defined"}:
        return None
    # Qualified names: take the whole A::B::name.
    start = m.start()
    q = re.search(r"((?:[A-Za-z_]\w*(?:\s*<[^<>]*>)?\s*::\s*)+)$", before[:start])
    if q:
        start = q.start()
        name = before[start:m.end()].strip()
    return re.sub(r"\s+", "", name), start


def initializer_brace(header):
    """Whether a '{' after `header` (at namespace or class scope) is inside the header: within
    unclosed parentheses (`x_(Tensor::host({n}))`), or a member's braced initializer in a
    constructor's initializer list (`) : a_{1}`)."""
    depth = 0
    for ch in header:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
    if depth > 0:
        return True
    h = header.rstrip()
    return bool(re.search(r"\)\s*(noexcept\s*)?:[^:]", h)) and bool(re.search(r"[\w>]$", h)) \
        and not re.search(r"\b(const|noexcept|override|final|mutable)$", h)


def scan(path, text):
    """(name, first line, last line) of every function definition in `text`."""
    src = strip_preprocessor(blank_literals(text))
    found = []
    # Scope stack: "ns" (namespace, class, extern block: searched further), "skip" (an
    # initializer or anything else at namespace scope, skipped whole), "fn" (a function body).
    stack = []
    header_start = 0
    line_of = []
    line = 1
    for ch in src:
        line_of.append(line)
        if ch == "\n":
            line += 1
    i = 0
    n = len(src)
    depth_skip = 0
    while i < n:
        ch = src[i]
        in_fn = any(s[0] == "fn" for s in stack) or depth_skip > 0
        if ch == "{":
            if in_fn:
                stack.append(("inner", i))
            elif initializer_brace(src[header_start:i]):
                stack.append(("pinit", i))  # part of the header: braced init of a member
                i += 1
                continue
            else:
                header = src[header_start:i]
                stripped = " ".join(header.split())
                if re.match(r"^(inline\s+)?namespace\b", stripped) or re.match(r'^extern\s+""', stripped) \
                        or re.match(r"^(template\s*<.*>\s*)?(class|struct|union|enum)\b[^()=]*$", stripped) \
                        or re.match(r"^(typedef\s+)?(class|struct|union|enum)\b[^=]*$", stripped) and "(" not in stripped:
                    stack.append(("ns", i))
                else:
                    named = function_name(header)
                    if named:
                        name, off = named
                        stack.append(("fn", i, name, line_of[header_start + off]))
                    else:
                        stack.append(("skip", i))
                        depth_skip += 1
            header_start = i + 1
        elif ch == "}":
            if stack and stack[-1][0] == "pinit":
                stack.pop()
                i += 1
                continue
            if stack:
                top = stack.pop()
                if top[0] == "fn":
                    found.append((top[2], top[3], line_of[i]))
                elif top[0] == "skip":
                    depth_skip -= 1
            if not any(s[0] in ("fn", "skip", "inner") for s in stack):
                header_start = i + 1
        elif ch == ";" and not in_fn:
            header_start = i + 1
        elif ch == ":" and not in_fn and re.search(r"\b(public|private|protected)\s*$", src[header_start:i]):
            header_start = i + 1
        i += 1
    return found


def sources(paths):
    for p in paths:
        if os.path.isfile(p):
            yield p
            continue
        for root, dirs, files in os.walk(p):
            dirs.sort()
            for f in sorted(files):
                if f.endswith(SOURCE_SUFFIXES):
                    yield os.path.join(root, f)


def main(argv):
    limit = 100
    paths = []
    k = 0
    while k < len(argv):
        if argv[k] == "--max":
            limit = int(argv[k + 1])
            k += 2
        else:
            paths.append(argv[k])
            k += 1
    over = 0
    for path in sources(paths):
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        for name, first, last in scan(path, text):
            length = last - first + 1
            if length > limit:
                print(f"{path}:{first}: {name} has {length} lines")
                over += 1
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
