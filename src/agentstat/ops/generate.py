"""Regenerate the committed rule file and dashboards:  ``python -m agentstat.ops.generate``

``--check`` writes nothing and exits 1 when a committed file differs from what the
generators produce now (CI and ``tests/test_rules.py`` use the same comparison).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agentstat.ops import dashboards, rules
from agentstat.ops.objectives import Objectives

RULES_FILE = "alerts/agentstat-rules.yml"


def generated_files(objectives: Objectives | None = None) -> dict[str, str]:
    """Repository-relative path -> content of every generated file."""
    objectives = objectives or Objectives()
    files = {RULES_FILE: rules.render(objectives)}
    for name, build in dashboards.DASHBOARDS.items():
        files[f"dashboards/{name}"] = dashboards.render(build(objectives))
    return files


def stale_files(root: Path) -> list[str]:
    """Generated files under ``root`` that are missing or differ from the generators."""
    stale = []
    for relative, content in generated_files().items():
        path = root / relative
        if not path.exists() or path.read_text(encoding="utf-8") != content:
            stale.append(relative)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agentstat.ops.generate", description=__doc__)
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root")
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(args.root)
        for relative in stale:
            print(f"stale: {relative} (run python -m agentstat.ops.generate)", file=sys.stderr)
        return 1 if stale else 0
    for relative, content in generated_files().items():
        path = args.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        print(f"wrote {relative}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
