"""Old import path of the load balancer; it lives in :mod:`agentstat.runtime.balancer` now."""

from agentstat.runtime.balancer import *  # noqa: F403  (the same public names)
from agentstat.runtime.balancer import __all__ as __all__
