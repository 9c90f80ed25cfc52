"""Integrations with agent frameworks, and the base they share.

Each framework has its own module ``agentstat.integrations.<framework>``, its own
:class:`FrameworkInstrumentor` subclass and its own ``opentelemetry_instrumentor`` entry
point ``agentstat_<framework>``: ``opentelemetry-instrument`` loads it,
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=agentstat_<framework>`` keeps it off, and
``XInstrumentor().instrument()`` / ``.uninstrument()`` switch it in code. A framework
module is imported only when its framework is (see :mod:`agentstat.integrations._base`
for the version check and the rule that records each logical run once).

Writing an integration::

    from agentstat.integrations import FrameworkInstrumentor, current_agent_name, start_run

    class ExampleInstrumentor(FrameworkInstrumentor):
        framework = "example"                 # import name
        distribution = "example-sdk"          # checked against `supported` on import
        supported = ">= 1.0, < 2"

        def _patch(self, module):             # the framework's top-level package
            wrapt.wrap_function_wrapper(module, "Agent.run", _run)

        def _unpatch(self):
            unwrap(...)

    def _run(wrapped, instance, args, kwargs):
        run = start_run("agent", instance.name, key=instance)   # None: not recorded here
        ...
        run.finish(error)                     # an exception, a fixed string, or None

    # A call that returns a handle, coroutine, async context manager or stream:
    #     return run.finish_when_done(wrapped(*args, **kwargs))
"""

from agentstat.integrations._base import FrameworkInstrumentor, Run, current_agent_name, start_run

__all__ = ["FrameworkInstrumentor", "Run", "current_agent_name", "start_run"]
