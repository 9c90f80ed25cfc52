import time


class LRUCache:
    """get() returns the value or None; put() drops the oldest key when full."""

    def __init__(self, max_size=100, default_ttl=300):
        self.max_size = max_size
        self.default_ttl = default_ttl
        self.cache = {}  # key -> (value, expires at)

    def get(self, key):
        item = self.cache.get(key)
        if item is None:
            return None
        value, expires = item
        if time.monotonic() > expires:
            del self.cache[key]
            return None
        self.cache[key] = self.cache.pop(key)  # most recently used goes last
        return value

    def put(self, key, value, ttl=None):
        if key in self.cache:
            del self.cache[key]
        elif len(self.cache) >= self.max_size:
            del self.cache[next(iter(self.cache))]
        self.cache[key] = (value, time.monotonic() + (ttl or self.default_ttl))


class TieredCache:
    """Three LRUCache tiers; a hit below the top is copied one tier up."""

    def __init__(self):
        self.hot = LRUCache(2, 60)
        self.warm = LRUCache(4, 600)
        self.cold = LRUCache(8, 3600)

    def get(self, key):
        value = self.hot.get(key)
        if value is not None:
            return value
        value = self.warm.get(key)
        if value is not None:
            self.hot.put(key, value)
            return value
        value = self.cold.get(key)
        if value is not None:
            self.warm.put(key, value)
        return value


class NotACache:
    def store(self, key, value):
        pass
