import pathlib
import sys
import time

from app_cache import LRUCache, TieredCache
from app_lb import AgentInstance, LoadBalancer

cache = LRUCache(max_size=3)
cache.put("a", 1)
cache.put("b", 0)  # a falsy value is still a hit for this shape: only None is a miss
for key in ["a", "a", "b", "x", "y"]:
    cache.get(key)

tiered = TieredCache()
tiered.cold.put("k", "v")
for key in ["k", "k", "k", "nope"]:
    tiered.get(key)

lb = LoadBalancer()
lb.register(AgentInstance("w-1", "writer"))
lb.register(AgentInstance("w-2", "writer"))
held = [lb.acquire("writer") for _ in range(5)]
lb.release(held[0])
held[1].is_healthy = False

pathlib.Path(sys.argv[1]).write_text("done")
time.sleep(120)
