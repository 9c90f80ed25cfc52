"""Old import path of ``retry``; it lives in :mod:`agentstat.runtime.retry` now."""

from agentstat.runtime.retry import Backoff, retry

__all__ = ["Backoff", "retry"]
