"""TOML text helpers for configs: where each key sits (for error lines), and writing TOML back.

:mod:`tomllib` parses but neither writes nor says where a key was; config errors must name the
line, so :func:`key_lines` scans the text for key and table positions. It follows TOML's
structure (tables, arrays of tables, dotted and quoted keys, multi-line strings and arrays)
closely enough to place every key a config can hold; a key it cannot place simply gets no line.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+$")


def _split_dotted(key: str) -> list[str]:
    """``a."b.c".d`` -> ``['a', 'b.c', 'd']``."""
    parts, current, quote = [], "", ""
    for char in key:
        if quote:
            if char == quote:
                quote = ""
            else:
                current += char
        elif char in "\"'":
            quote = char
        elif char == ".":
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return parts


def _key_end(line: str) -> int:
    """Index of the ``=`` that ends the key on ``line`` (outside quotes), or -1."""
    quote = ""
    for i, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "=":
            return i
    return -1


class _ValueScanner:
    """Tracks whether a value continues past its line: an open multi-line string or bracket."""

    def __init__(self) -> None:
        self.depth = 0
        self.string = ""  # the open multi-line string's delimiter, or ""

    @property
    def open(self) -> bool:
        return self.depth > 0 or bool(self.string)

    def feed(self, text: str) -> None:
        i = 0
        while i < len(text):
            if self.string:
                end = text.find(self.string, i)
                if end < 0:
                    return
                i, self.string = end + 3, ""
                continue
            char = text[i]
            if text.startswith(('"""', "'''"), i):
                self.string, i = text[i:i + 3], i + 3
            elif char in "\"'":
                end = text.find(char, i + 1)
                while end > 0 and char == '"' and text[end - 1] == "\\":
                    end = text.find(char, end + 1)
                i = len(text) if end < 0 else end + 1
            elif char == "#":
                return
            else:
                self.depth += char in "[{"
                self.depth -= char in "]}"
                i += 1


def key_lines(text: str) -> dict[str, int]:
    """Map each dotted key path in TOML ``text`` to the 1-based line where it first appears.

    Arrays of tables get their index in the path (``schedules.1.lr``); a table header maps the
    table's own path.

    >>> key_lines('seed = 1\\n[range_test]\\nstart = 1e-5\\n')
    {'seed': 1, 'range_test': 2, 'range_test.start': 3}
    >>> key_lines('[[s]]\\na = 1\\n[[s]]\\nb = \"\"\"\\nc = 3\\n\"\"\"\\n')
    {'s': 1, 's.0': 1, 's.0.a': 2, 's.1': 3, 's.1.b': 4}
    """
    lines: dict[str, int] = {}
    table: list[str] = []
    array_counts: dict[str, int] = {}
    value = _ValueScanner()
    for number, raw in enumerate(text.splitlines(), start=1):
        if value.open:
            value.feed(raw)
            continue
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[["):
            name = _split_dotted(line[2:line.index("]]")] if "]]" in line else line[2:])
            dotted = ".".join(name)
            index = array_counts.get(dotted, 0)
            array_counts[dotted] = index + 1
            table = [*name, str(index)]
            lines.setdefault(dotted, number)
        elif line.startswith("["):
            table = _split_dotted(line[1:line.index("]")] if "]" in line else line[1:])
        else:
            end = _key_end(line)
            if end < 0:
                continue
            path = table + _split_dotted(line[:end])
            for depth in range(1, len(path) + 1):
                lines.setdefault(".".join(path[:depth]), number)
            value.feed(line[end + 1:])
            continue
        for depth in range(1, len(table) + 1):
            lines.setdefault(".".join(table[:depth]), number)
    return lines


def line_of(lines: Mapping[str, int], path: tuple[str | int, ...]) -> int | None:
    """The line of ``path`` or, failing that, of its nearest ancestor present in ``lines``."""
    parts = [str(p) for p in path]
    while parts:
        found = lines.get(".".join(parts))
        if found is not None:
            return found
        parts.pop()
    return None


def format_value(value: Any) -> str:
    """A value as TOML writes it: strings quoted, booleans lower-case.

    >>> format_value("sgd"), format_value(True), format_value(1e-05), format_value([1, "a"])
    ('"sgd"', 'true', '1e-05', '[1, "a"]')
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        # JSON's escapes are TOML's, except that TOML also forbids a raw DEL character.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, Mapping):
        inner = ", ".join(f"{_key(k)} = {format_value(v)}" for k, v in value.items()
                          if v is not None)
        return "{" + inner + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return json.dumps(str(value))


def _key(name: str) -> str:
    return name if _BARE_KEY.match(name) else format_value(name)


def _is_table_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and bool(value) and all(
        isinstance(v, Mapping) for v in value)


def _dump_table(data: Mapping[str, Any], prefix: str) -> Iterator[str]:
    for key, value in data.items():  # scalars and inline values first, as TOML requires
        if value is not None and not isinstance(value, Mapping) and not _is_table_list(value):
            yield f"{_key(key)} = {format_value(value)}"
    for key, value in data.items():
        name = f"{prefix}{_key(key)}"
        if isinstance(value, Mapping):
            yield ""
            yield f"[{name}]"
            yield from _dump_table(value, f"{name}.")
        elif _is_table_list(value):
            for item in value:
                yield ""
                yield f"[[{name}]]"
                yield from _dump_table(item, f"{name}.")


def dump_toml(data: Mapping[str, Any]) -> str:
    """``data`` (nested dicts, lists, scalars) as TOML text; None values are left out.

    >>> import tomllib
    >>> data = {"task": "digits", "out": None, "range_test": {"start": 1e-05, "steps": 50}}
    >>> print(dump_toml(data), end="")
    task = "digits"
    <BLANKLINE>
    [range_test]
    start = 1e-05
    steps = 50
    >>> tomllib.loads(dump_toml(data)) == {"task": "digits", "range_test": data["range_test"]}
    True
    """
    return "\n".join(_dump_table(data, "")).lstrip("\n") + "\n"
