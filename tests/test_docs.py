"""The README stays in step with the metric table and the CLI."""

from __future__ import annotations

from agentstat import semconv
from tests.helpers import REPO


def test_readme_lists_every_metric_as_it_appears_on_the_page() -> None:
    """Each metric's Prometheus name (as /metrics spells it) is documented in README.md."""
    readme = (REPO / "README.md").read_text()
    missing = [
        spec.prometheus_name for spec in semconv.ALL_METRICS if spec.prometheus_name not in readme
    ]
    assert not missing


def test_readme_documents_the_bucket_bounds_as_le_strings() -> None:
    """The README's bucket list is the table's, written as the exporter writes `le`."""
    readme = (REPO / "README.md").read_text()
    assert ", ".join(semconv.le_label(b) for b in semconv.DURATION_BUCKETS) in " ".join(
        readme.split()
    )


def test_readme_first_screen_has_the_demo_and_test_commands() -> None:
    """The first screen of the README gives the two commands CI and newcomers rely on."""
    first_screen = "\n".join((REPO / "README.md").read_text().splitlines()[:25])
    assert ".venv/bin/agentstat demo" in first_screen
    assert "./scripts/test" in first_screen
    assert "scripts/test" in (REPO / ".ci" / "run").read_text()
