#!/usr/bin/env python3
"""Where the manager's bytes go: function sizes of two wasm modules with a
name section (bench/size-base and bench/size-manager, built unstripped by
scripts/size-breakdown), diffed by function and grouped by crate.

usage: wasm-breakdown.py BASE.wasm MANAGER.wasm [REGEX]

Prints the code and data sizes of both, the functions only MANAGER has
grouped by crate path, and, with REGEX, those functions whose name matches
it. Sizes are raw function bodies before wasm-opt and gzip: use them to
compare builds; scripts/bench gives the shipped figures."""
import collections
import re
import signal
import sys

signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head` is fine


def leb(data, i):
    """An unsigned LEB128 at i: (value, next index)."""
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def skip_limits(data, i):
    flags, i = leb(data, i)
    _, i = leb(data, i)
    if flags & 1:
        _, i = leb(data, i)
    return i


def parse(path):
    """({function name: body size}, data section size) of a wasm file."""
    data = open(path, "rb").read()
    i, imported, bodies, names, data_size = 8, 0, [], {}, 0
    while i < len(data):
        section = data[i]
        size, i = leb(data, i + 1)
        end = i + size
        if section == 2:  # imports: function indices start after them
            count, j = leb(data, i)
            for _ in range(count):
                for _ in range(2):  # module and field names
                    length, j = leb(data, j)
                    j += length
                kind = data[j]
                j += 1
                if kind == 0:
                    _, j = leb(data, j)
                    imported += 1
                elif kind == 1:
                    j = skip_limits(data, j + 1)
                elif kind == 2:
                    j = skip_limits(data, j)
                elif kind == 3:
                    j += 2
                elif kind == 4:
                    _, j = leb(data, j + 1)
        elif section == 10:  # code
            count, j = leb(data, i)
            for _ in range(count):
                length, j = leb(data, j)
                bodies.append(length)
                j += length
        elif section == 11:
            data_size = size
        elif section == 0:  # custom: the "name" section
            length, j = leb(data, i)
            if data[j:j + length] == b"name":
                j += length
                while j < end:
                    kind = data[j]
                    length, j = leb(data, j + 1)
                    if kind == 1:  # function names
                        count, k = leb(data, j)
                        for _ in range(count):
                            index, k = leb(data, k)
                            n, k = leb(data, k)
                            names[index] = data[k:k + n].decode("utf-8", "replace")
                            k += n
                    j += length
        i = end
    functions = collections.Counter()
    for k, size in enumerate(bodies):
        name = names.get(imported + k, f"func{imported + k}")
        functions[re.sub(r"\.\d+$", "", demangle(name))] += size
    return functions, data_size


ESCAPES = {"$LT$": "<", "$GT$": ">", "$u20$": " ", "$RF$": "&", "$C$": ",",
           "$u7b$": "{", "$u7d$": "}", "$BP$": "*", "$u27$": "'", "$u5b$": "[",
           "$u5d$": "]", "$u3b$": ";", "$u2b$": "+", "$u22$": '"', "$LP$": "(",
           "$RP$": ")", "$u21$": "!", "$u3d$": "="}


def demangle(name):
    """Legacy Rust mangling (_ZN...E) to a path, without the hash."""
    if not name.startswith("_ZN"):
        return name
    i, parts = 3, []
    while i < len(name) and name[i].isdigit():
        j = i
        while name[j].isdigit():
            j += 1
        length = int(name[i:j])
        parts.append(name[j:j + length])
        i = j + length
    if parts and re.fullmatch(r"h[0-9a-f]{16}", parts[-1]):
        parts.pop()
    path = "::".join(parts)
    path = re.sub(r"\$[A-Za-z0-9]+\$", lambda m: ESCAPES.get(m.group(0), m.group(0)), path)
    return path.replace("..", "::").lstrip("_")


def crate(name):
    """The first two path segments of a function (or of its impl's type)."""
    m = re.match(r"^[<&\s]*(?:dyn |impl |mut )*([A-Za-z_]\w*(?:::[A-Za-z_]\w*)?)", name)
    return m.group(1) if m else name


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    base, base_data = parse(sys.argv[1])
    mgr, mgr_data = parse(sys.argv[2])
    new = {k: v for k, v in mgr.items() if k not in base}
    grown = sum(mgr[k] - base[k] for k in mgr if k in base)
    gone = sum(v for k, v in base.items() if k not in mgr)
    print(f"code: base {sum(base.values())} B, manager {sum(mgr.values())} B; "
          f"data: base {base_data} B, manager {mgr_data} B")
    print(f"only in manager: {len(new)} functions, {sum(new.values())} B; "
          f"shared functions grew by {grown} B; base-only functions {gone} B")
    by_crate = collections.Counter()
    for name, size in new.items():
        by_crate[crate(name)] += size
    for name, size in by_crate.most_common(40):
        print(f"{size:8} {name}")
    if len(sys.argv) > 3:
        pattern = re.compile(sys.argv[3])
        print(f"\nfunctions only in manager matching {sys.argv[3]!r}:")
        for name, size in sorted(new.items(), key=lambda x: -x[1]):
            if pattern.search(name):
                print(f"{size:8} {name[:200]}")


if __name__ == "__main__":
    main()
