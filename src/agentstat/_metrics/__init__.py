"""Where recorded values live until a reader collects them.

- :mod:`.caps`: cardinality caps, the one bound on label values;
- :mod:`.histograms`: pre-aggregated bucket arrays per attribute set;
- :mod:`.store`: the process's store of histograms, chosen once;
- :mod:`.counts`: integer counts kept by caches, balancers and retries;
- :mod:`.bridge`: hands both to OpenTelemetry readers (every private SDK access).

Nothing here imports the instrumentation or the runtime primitives: they record into
this package, exporters read from it.
"""
