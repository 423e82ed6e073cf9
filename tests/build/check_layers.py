#!/usr/bin/env python3
"""Checks every #include "layer/..." in the source tree against the layer table in
CMakeLists.txt (the catlip_layer(...) calls and the catlip executable's links), so that the
rule is stated once: a file may include its own layer and the layers its library links,
directly or through them, and nothing else. The per-layer include roots make the compiler
refuse the same includes; this test names every offender at once, with file and line.

usage: check_layers.py SOURCE_DIR
"""
import os
import re
import sys


def layer_table(source):
    text = open(os.path.join(source, "CMakeLists.txt")).read()
    text = re.sub(r"#[^\n]*", "", text)
    layers, deps = {}, {}
    for m in re.finditer(r"catlip_layer\(\s*(\w+)\s+(\S+)([^)]*)\)", text):
        name, folder, rest = m.group(1), m.group(2), m.group(3)
        layers[name] = folder
        deps[name] = [t[len("catlip_"):] for t in rest.split() if t.startswith("catlip_")]
    m = re.search(r"target_link_libraries\(catlip\s+PRIVATE([^)]*)\)", text)
    layers["cli"] = "cli"
    deps["cli"] = [t[len("catlip_"):] for t in m.group(1).split() if t.startswith("catlip_")]
    return layers, deps


def reachable(deps, name):
    seen, todo = set(), list(deps.get(name, []))
    while todo:
        d = todo.pop()
        if d not in seen:
            seen.add(d)
            todo.extend(deps.get(d, []))
    return seen | {name}


def main():
    source = sys.argv[1] if len(sys.argv) > 1 else "."
    layers, deps = layer_table(source)
    bad = []
    for name, folder in sorted(layers.items()):
        allowed = reachable(deps, name)
        root = os.path.join(source, folder)
        for file in sorted(os.listdir(root)):
            if not file.endswith((".c", ".h")):
                continue
            path = os.path.join(root, file)
            for number, line in enumerate(open(path, errors="replace"), 1):
                m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
                if not m:
                    continue
                target = m.group(1)
                if target == "catlip.pb-c.h":
                    used = "proto"
                elif "/" in target and target.split("/")[0] in layers:
                    used = target.split("/")[0]
                else:
                    continue
                if used not in allowed:
                    bad.append("%s:%d: layer %s includes %s (layer %s); %s may use %s" % (
                        os.path.relpath(path, source), number, name, target, used, name,
                        ", ".join(sorted(allowed - {name})) or "nothing else"))
    arrows = "; ".join("%s uses %s" % (name, ", ".join(deps[name]) or "nothing") for name in sorted(deps))
    if bad:
        print("\n".join(bad))
        print("layers: %s" % arrows)
        print("FAIL: %d include(s) against the layering (docs/architecture.md)" % len(bad))
        return 1
    print("ok: %d layers, every include within its layer or below (%s)" % (len(layers), arrows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
