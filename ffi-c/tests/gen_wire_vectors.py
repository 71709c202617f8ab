#!/usr/bin/env python3
"""Turns tests/wire/vectors.json into a C header that test_wire.c includes.

    gen_wire_vectors.py VECTORS.json OUT.h

Inputs become C data; each vector's expected result becomes one string in a
rendering that test_wire.c produces from what the library returns, so the C
test compares two strings and this script holds no codec logic:

    S(s)                  "<bytes>:<s>"   (length-prefixed, so any text is unambiguous)
    parsed timeout        "ns <digits>" | "absent" | "malformed"
    formatted value       "value:<text>" | "absent" | "malformed"
    traceparent           "<trace_id hex>-<span_id hex>-<flags decimal>" | "absent"
    tracestate            "[" S(key) S(value) ... "]" | "dropped"
    baggage               "[" S(key) S(value) "(" (S(prop) (S(value) | "-"))... ")" ... "]"

The output goes under build/, never into the repository.
"""

import json
import sys


def s(text: str) -> str:
    return f"{len(text.encode())}:{text}"


def c_str(text) -> str:
    if text is None:
        return "NULL"
    out = []
    for b in text.encode():
        ch = chr(b)
        # Octal escapes for everything else: no hex-escape greed, no trigraphs.
        out.append(ch if ch.isascii() and (ch.isalnum() or ch in " _-.,;:=+/@*%!#$&'()<>[]{}|~^`") else f"\\{b:03o}")
    return '"' + "".join(out) + '"'


def render(kind: str, expect) -> str:
    if kind in ("grpc-timeout", "timeout-ms", "format-grpc-timeout", "format-timeout-ms", "format-baggage"):
        if expect is None or expect == "malformed":
            return "absent" if expect is None else expect
        return f"ns {expect}" if kind in ("grpc-timeout", "timeout-ms") else f"value:{expect}"
    if kind == "traceparent":
        return "absent" if expect is None else f"{expect['trace_id']}-{expect['span_id']}-{expect['flags']}"
    if kind == "tracestate":
        return "dropped" if expect is None else "[" + "".join(s(k) + s(v) for k, v in expect) + "]"
    if kind == "baggage":
        return "[" + "".join(members(expect)) + "]"
    raise SystemExit(f"unknown vector kind {kind!r}: teach gen_wire_vectors.py and test_wire.c")


def members(entries):
    for key, value, props in entries:
        yield s(key) + s(value) + "(" + "".join(s(p) + (s(v) if v is not None else "-") for p, v in props) + ")"


def c_entries(entries) -> str:
    if not entries:
        return "0, NULL"
    items = []
    for key, value, props in entries:
        if props:
            ps = ", ".join(f"{{{c_str(p)}, {c_str(v)}}}" for p, v in props)
            props_c = f"{len(props)}, (const struct wire_prop[]){{{ps}}}"
        else:
            props_c = "0, NULL"
        items.append(f"{{{c_str(key)}, {c_str(value)}, {props_c}}}")
    return f"{len(entries)}, (const struct wire_entry[]){{{', '.join(items)}}}"


def c_chunks(text: str) -> str:
    """NULL-terminated pieces: ISO C only promises string literals of 4,095 bytes."""
    pieces = [text[i : i + 1000] for i in range(0, len(text), 1000)] or [""]
    return f"(const char *const[]){{{', '.join(c_str(p) for p in pieces)}, NULL}}"


def c_vector(v) -> str:
    kind, inp = v["kind"], v.get("input")
    inputs, entries, repeat, times = [], None, ["NULL"] * 3, 0
    if "input_repeat" in v:
        prefix, unit, times, suffix = v["input_repeat"]
        repeat = [c_str(prefix), c_str(unit), c_str(suffix)]
    elif kind == "format-baggage":
        entries = inp
    elif isinstance(inp, str):
        inputs = [inp]
    else:
        inputs = inp
    inputs_c = (
        f"{len(inputs)}, (const char *const[]){{{', '.join(c_str(i) for i in inputs)}}}" if inputs else "0, NULL"
    )
    fields = [
        c_str(kind),
        c_str(v["name"]),
        c_str(v.get("header")),
        inputs_c,
        f"{{{', '.join(repeat)}}}",
        f"{times}",
        c_entries(entries or []),
        c_chunks(render(kind, v["expect"])),
    ]
    return "    {" + ", ".join(fields) + "},"


def main(src: str, out: str) -> int:
    vectors = json.load(open(src, encoding="utf-8"))["vectors"]
    lines = [
        f"/* Generated from {src} by ffi-c/tests/gen_wire_vectors.py; do not edit. */",
        "struct wire_prop { const char *key; const char *value; };",
        "struct wire_entry { const char *key; const char *value; size_t n_props; const struct wire_prop *props; };",
        "struct wire_vector {",
        "    const char *kind, *name, *header;",
        "    size_t n_inputs;",
        "    const char *const *inputs;",
        "    const char *repeat[3]; /* prefix, unit, suffix: one input, the unit repeat_times times */",
        "    size_t repeat_times;",
        "    size_t n_entries;",
        "    const struct wire_entry *entries;",
        "    const char *const *expect; /* pieces to concatenate, NULL-terminated */",
        "};",
        f"#define WIRE_VECTOR_COUNT {len(vectors)}",
        "static const struct wire_vector wire_vectors[WIRE_VECTOR_COUNT] = {",
        *(c_vector(v) for v in vectors),
        "};",
    ]
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
