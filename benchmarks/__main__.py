"""Command line: ``python -m benchmarks [--quick|--full] [--smoke] [--json PATH] [--only S]``.

Every section runs in this one process, in a fixed order with fixed seeds; a section
that raises is reported (traceback on stderr) and the others still run, and the exit
status is then 1, so the CI smoke run catches a broken section without timing anything.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from pathlib import Path

from benchmarks import SECTIONS
from benchmarks._harness import (
    FULL,
    QUICK,
    SMOKE,
    Report,
    machine,
    render_section,
    render_targets,
    write_json,
)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="about a minute (the default)")
    size.add_argument("--full", action="store_true", help="more rounds, 10 M calls for memory")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes, a few seconds: proves it runs"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the run as JSON")
    parser.add_argument(
        "--only",
        action="append",
        choices=SECTIONS,
        metavar="SECTION",
        help=f"run only this section (repeatable): {', '.join(SECTIONS)}",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    mode = SMOKE if args.smoke else FULL if args.full else QUICK
    report = Report(mode)
    info = machine()
    print(
        f"agentstat benchmarks, mode={mode.name}: {info['cpus']} CPUs, {info['cpu_model']}, "
        f"{info['implementation']} {info['python']}, {mode.rounds} rounds/case, "
        f"~{mode.round_seconds * 1e3:g} ms/round",
        flush=True,
    )
    began = time.perf_counter()
    chosen = [s for s in SECTIONS if s in args.only] if args.only else list(SECTIONS)
    for section in chosen:
        start = time.perf_counter()
        try:
            module = importlib.import_module(f"benchmarks.{section}")
            module.run(mode, report)
        except Exception as exc:
            traceback.print_exc()
            report.errors.append(f"{section}: {type(exc).__name__}: {exc}")
            print(f"\n[{section}] FAILED: {type(exc).__name__}: {exc}", flush=True)
            continue
        print(f"\n{render_section(report, section)}", flush=True)
        print(f"({section}: {time.perf_counter() - start:.1f} s)", flush=True)
    print(f"\n{render_targets(report)}")
    if mode is SMOKE:
        print("(smoke mode: tiny sizes and rounds, the numbers above mean nothing)")
    print(f"\ntotal {time.perf_counter() - began:.1f} s")
    if args.json:
        write_json(report, args.json)
        print(f"wrote {args.json}")
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
