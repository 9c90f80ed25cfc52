"""Where recorded values live until a reader collects them.

- :mod:`.caps`: cardinality caps, the one bound on label values;
- :mod:`.histograms`: pre-aggregated bucket arrays per attribute set;
- :mod:`.store`: the process's store of histograms, and the storage collections read
  (in-process, or :mod:`.multiprocess` for the processes of one server, whose members
  keep their snapshot files current through :mod:`.member`), chosen once;
- :mod:`.counts`: integer counts kept by caches, balancers and retries;
- :mod:`.snapshot`: plain values of both, as written to files and merged;
- :mod:`.producer`: both as OpenTelemetry metrics; :mod:`.bridge`: hands them to
  OpenTelemetry readers (every private SDK access);
- :mod:`.exposition`: a snapshot as Prometheus text, straight (what agentstat's own
  endpoints serve, through :mod:`.page`, the endpoint's WSGI app), in GIL slices
  (:mod:`.gil`) so a scrape does not stall the app.

Nothing here imports the instrumentation or the runtime primitives: they record into
this package, exporters read from it.
"""

from agentstat._metrics import multiprocess as _multiprocess

# A process started with AGENTSTAT_MULTIPROCESS_DIR set adds to that server's page.
_multiprocess.join_from_environment()
