"""Old import path of the caches; they live in :mod:`agentstat.runtime` now."""

from agentstat.runtime.cache import MISSING, Cache
from agentstat.runtime.cached import cached
from agentstat.runtime.tiered import DEFAULT_TIERS, Tier, TieredCache

__all__ = ["DEFAULT_TIERS", "MISSING", "Cache", "Tier", "TieredCache", "cached"]
