# agentstat instruments the user's own code (named by configuration), not a third-party
# library, so there is nothing for opentelemetry-instrument's dependency check to test.
_instruments: tuple[str, ...] = ()

_supports_metrics = True
