"""The benchmark suite runs end to end; timings are never asserted (benchmarks are not tests)."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import REPO, clean_env

#: The six sections issue 5 asks for (benchmarks.SECTIONS).
SECTIONS = ("calls", "caches", "balancer", "memory", "scrape", "accuracy")


def test_smoke_run_prints_every_section(tmp_path):
    """`python -m benchmarks --smoke` exits 0, prints every section and the targets, writes JSON."""
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--json", str(out)],
        cwd=REPO,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for section in SECTIONS:
        assert f"[{section}]\n" in proc.stdout, f"section {section} missing:\n{proc.stdout}"
        assert f"[{section}] FAILED" not in proc.stdout
    assert "[targets]" in proc.stdout
    assert out.exists() and '"rows"' in out.read_text()
