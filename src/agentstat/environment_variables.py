"""Environment variables agentstat reads.

The target lists and ``AGENTSTAT_STRICT`` are also keys of the ``[tool.agentstat]`` TOML
table (lower case, without the prefix); the rest are environment only, as noted."""

AGENTSTAT_AGENTS = "AGENTSTAT_AGENTS"
"""Agents to instrument by path: comma-separated ``module:qualname[=name]``."""

AGENTSTAT_TOOLS = "AGENTSTAT_TOOLS"
"""Tools to instrument by path, same format as :data:`AGENTSTAT_AGENTS`."""

AGENTSTAT_CACHES = "AGENTSTAT_CACHES"
"""The user's own cache classes (``get``/``put`` shape), ``module:qualname[=name]``."""

AGENTSTAT_BALANCERS = "AGENTSTAT_BALANCERS"
"""The user's own load-balancer classes (``acquire``/``release`` shape)."""

AGENTSTAT_CONFIG = "AGENTSTAT_CONFIG"
"""Path of a TOML file with the settings (a ``[tool.agentstat]`` table, or top level).
Environment only."""

AGENTSTAT_STRICT = "AGENTSTAT_STRICT"
"""``1``/``true``: a bad target raises at start-up instead of being logged and skipped."""

AGENTSTAT_MAX_NAMES = "AGENTSTAT_MAX_NAMES"
"""Distinct agent/tool names per metric before further names become ``_OTHER``.
Environment only."""

AGENTSTAT_MAX_ERROR_TYPES = "AGENTSTAT_MAX_ERROR_TYPES"
"""Distinct ``error.type`` values per metric before further ones become ``_OTHER``.
Environment only."""

AGENTSTAT_MAX_SERIES = "AGENTSTAT_MAX_SERIES"
"""Series per histogram metric (default 2000) before new error types fold into
``(name, _OTHER)`` and new names into ``_OTHER``. Environment only."""

AGENTSTAT_WEB_CONFIG_FILE = "AGENTSTAT_WEB_CONFIG_FILE"
"""Path of a web configuration file (the Prometheus exporter-toolkit format: TLS, client
certificates, basic auth) for the ``/metrics`` endpoint; see :mod:`agentstat.web_config`."""

AGENTSTAT_DURATION_BUCKETS = "AGENTSTAT_DURATION_BUCKETS"
"""Bucket bounds in seconds of the agent and tool duration histograms, comma-separated
and increasing (default ``0.005,0.01,...,600``). Put every latency threshold you alert
on among them so the rules count it exactly; every process of one server must use the
same bounds. Read by the instrumentation, ``agentstat rules`` and ``agentstat check``."""

AGENTSTAT_CHECK_PASSWORD = "AGENTSTAT_CHECK_PASSWORD"
"""The basic-auth password ``agentstat check`` sends with ``--username`` (unless
``--password-file`` is given). Environment only."""

AGENTSTAT_MULTIPROCESS_DIR = "AGENTSTAT_MULTIPROCESS_DIR"
"""The directory through which the processes of one server add up on one ``/metrics``.
The serving process creates a private one and sets this for its children; set it
yourself only to join processes started some other way. Environment only."""
