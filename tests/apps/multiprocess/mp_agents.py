"""The agent every multi-process test app calls, plus a cache whose size is a gauge."""

import os
import time

import agentstat

CACHE: agentstat.Cache[str, int] = agentstat.Cache(maxsize=10, name="mp-cache")


def planner(delay: float) -> int:
    """Sleep ``delay`` seconds (0: return at once); one cache lookup; this process's pid."""
    if CACHE.get("seen") is agentstat.MISSING:
        CACHE.put("seen", 1)
    if delay:
        time.sleep(delay)
    return os.getpid()
