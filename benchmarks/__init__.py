"""agentstat's benchmark suite: what instrumentation costs, beside the baselines.

Run ``python -m benchmarks`` from the repository root (``--quick`` by default, ``--full``
for the published table, ``--smoke`` to prove every section runs in a few seconds).
Each section is one module with a ``run(mode, report)`` function; ``_harness`` does the
timing, the table and the JSON. Benchmarks are not tests: targets are printed as
met/missed and never asserted.
"""

#: Run order. Memory goes first: resident size only means something in a heap that no
#: other section has grown (a heap with freed room absorbs growth and hides it).
SECTIONS: tuple[str, ...] = (
    "memory", "calls", "hot_path", "caches", "balancer", "scrape", "accuracy", "frameworks",
    "frameworks_b",
)  # fmt: skip
