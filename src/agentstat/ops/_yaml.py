"""A small YAML writer for generated rule files.

PyYAML is not a runtime dependency, and ``agentstat rules`` must work in a bare
install. Rule files only hold mappings, lists, strings, integers and booleans, so a
writer for exactly that is short: multi-line strings (PromQL) become literal blocks,
strings that could be read as something else are double-quoted (JSON escapes are valid
YAML escapes), and key order is kept so the committed file diffs cleanly.
"""

from __future__ import annotations

import json
import re
from typing import Any

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_./:\-]*$")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def dump(data: Any) -> str:
    """YAML text of ``data`` (a mapping at the top)."""
    lines: list[str] = []
    _node(data, 0, lines)
    return "\n".join(lines) + "\n"


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        if "e" in text or "inf" in text or "nan" in text:
            raise ValueError(f"refusing to write ambiguous float {value!r}")
        return text
    if isinstance(value, str):
        if _PLAIN.match(value) and value.lower() not in _RESERVED:
            return value
        return json.dumps(value, ensure_ascii=False)
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


def _is_block_string(value: Any) -> bool:
    return isinstance(value, str) and "\n" in value


def _literal(head: str, text: str, indent: int, lines: list[str]) -> None:
    body = text.strip("\n").splitlines()
    if any(line != line.rstrip() for line in body) or body[0].startswith(" "):
        lines.append(f"{head} {json.dumps(text, ensure_ascii=False)}")
        return
    lines.append(f"{head} |-")
    pad = " " * indent
    lines.extend(pad + line if line else "" for line in body)


def _node(value: Any, indent: int, lines: list[str]) -> None:
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            lines.append(pad + "{}")
        for key, item in value.items():
            head = f"{pad}{_scalar(str(key))}:"
            if _is_block_string(item):
                _literal(head, item, indent + 2, lines)
            elif isinstance(item, dict | list) and item:
                lines.append(head)
                _node(item, indent + 2, lines)
            elif isinstance(item, dict | list):
                lines.append(f"{head} {'{}' if isinstance(item, dict) else '[]'}")
            else:
                lines.append(f"{head} {_scalar(item)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and item:
                sub: list[str] = []
                _node(item, indent + 2, sub)
                lines.append(f"{pad}- {sub[0][indent + 2 :]}")
                lines.extend(sub[1:])
            elif _is_block_string(item):
                _literal(f"{pad}-", item, indent + 2, lines)
            elif isinstance(item, dict | list):
                raise TypeError("nested lists are not supported")
            else:
                lines.append(f"{pad}- {_scalar(item)}")
    else:
        lines.append(pad + _scalar(value))
