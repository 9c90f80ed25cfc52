"""Cache hit and miss cost, plain and tiered, at 1k and 100k entries, and what counting adds.

Hits cycle over every key the cache holds (at 100k entries that also shows how each
structure behaves once it no longer fits in the CPU caches); a miss is the steady state
of a full cache: look up a key it does not hold, put it, evict the oldest. Miss keys
cycle over 2× the capacity in pre-built string keys (so under LRU every lookup misses,
and hits and misses pay the same key-fetching cost). Baselines, all in the same run:
``OrderedDict`` with ``get`` + ``move_to_end`` (the least an LRU can do in Python),
cachetools ``LRUCache``/``TTLCache``, ``functools.lru_cache`` (C code), and the
an O(n) list-based LRU (benchmarks/_list_based.py). Every number includes fetching
the next key from an iterator; that cost is its own row ("key iteration only").

agentstat's caches always count (there is no switch: the count is one integer bump the
hit path does anyway), so "instrumented vs not" is measured as the counting statement
itself, ``self._counts.hits += 1``, timed on a live cache, next to an empty statement
(timeit's loop alone). Targets: counting ≤ 150 ns per hit; an instrumented TTL cache
hit ≤ 2× an ``OrderedDict`` hit, and flat from 1k to 100k entries.
"""

from __future__ import annotations

import functools
import itertools
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import cachetools

from agentstat import MISSING, Cache, Tier, TieredCache, cached
from benchmarks._harness import Case, Mode, Report, Runner, measure, stmt_runner
from benchmarks._list_based import MISSING as LIST_MISSING
from benchmarks._list_based import ListLRU, ListTiered

SECTION = "caches"
TTL = 300.0
COUNTING_LIMIT_NS = 150.0
TTL_FACTOR = 2.0
#: 1k → 100k growth tolerated as "flat": CPU-cache misses grow every dict-based
#: structure a little (the OrderedDict row shows how much); O(n) grows 100×.
FLAT_FACTOR = 1.5

KEYS = "key iteration only"
ODICT = "OrderedDict get+move_to_end"
LRU = "agentstat Cache (LRU, counted)"
TTL_CACHE = f"agentstat Cache ttl={TTL:g} (LRU+TTL, counted)"
DECORATOR = "agentstat @cached"
LIST = "list-based O(n) LRU"
LIST_TIERS = "list-based 3×O(n) LRU tiers"
TIERED = "agentstat TieredCache (counted)"
COUNTING = "counting alone: self._counts.hits += 1"
FLOOR = "floor: a Python get() method on an OrderedDict"
CLOCK = "clock alone: time.monotonic()"
EMPTY = "empty statement (timeit loop alone)"

#: A miss followed by a put, for any cache with ``get(key, default)``.
GET_PUT = "k = nxt()\nif get(k, M) is M: put(k, k)"
ODICT_HIT = "k = nxt()\nv = get(k)\nmove(k)"
ODICT_MISS = "k = nxt()\nif get(k) is None:\n    d[k] = k\n    pop(False)"


def _keys(size: int) -> list[str]:
    return [f"key-{i:07d}" for i in range(size)]


def _hits(stmt: str, namespace: dict[str, Any], keys: list[str]) -> Runner:
    return stmt_runner(stmt, {**namespace, "nxt": itertools.cycle(keys).__next__})


def _misses(stmt: str, namespace: dict[str, Any], size: int) -> Runner:
    fresh = [f"miss-{i:07d}" for i in range(2 * size)]
    return stmt_runner(stmt, {**namespace, "nxt": itertools.cycle(fresh).__next__})


def _fill(put: Callable[[Any, Any], Any], keys: list[str]) -> None:
    for key in keys:
        put(key, key)


def _odict(keys: list[str]) -> OrderedDict[Hashable, Any]:
    return OrderedDict((k, k) for k in keys)


class _FloorLRU:
    """The least a Python-level LRU ``get`` can do: one method call, two C calls.

    Shows how much of any Python cache's hit is the method call itself, which an inline
    ``OrderedDict`` statement does not pay.
    """

    __slots__ = ("_data",)

    def __init__(self, keys: list[str]) -> None:
        self._data = OrderedDict((k, k) for k in keys)

    def get(self, key: Hashable, default: Any = None) -> Any:
        value = self._data.get(key, default)
        if value is not default:
            self._data.move_to_end(key)
        return value


def _lru_function(size: int, keys: list[str]) -> Callable[[Hashable], Hashable]:
    @functools.lru_cache(maxsize=size)
    def identity(key: Hashable) -> Hashable:
        return key

    for key in keys:
        identity(key)
    return identity


def _cached_function(size: int, keys: list[str]) -> Callable[[Hashable], Hashable]:
    @cached(maxsize=size, name="bench-cached")
    def identity(key: Hashable) -> Hashable:
        return key

    for key in keys:
        identity(key)
    return identity


def _get_put_factories(size: int) -> list[tuple[str, Callable[[], Any], Any]]:
    """(label, new empty cache, miss sentinel) for caches with ``get(k, d)`` + a put."""
    return [
        ("cachetools LRUCache", lambda: cachetools.LRUCache(size), LIST_MISSING),
        ("cachetools TTLCache", lambda: cachetools.TTLCache(size, TTL), LIST_MISSING),
        (LIST, lambda: ListLRU(size, TTL), LIST_MISSING),
        (LRU, lambda: Cache(size, name="bench-lru"), MISSING),
        (TTL_CACHE, lambda: Cache(size, TTL, name="bench-ttl"), MISSING),
    ]


def _put(cache: Any) -> Callable[[Any, Any], Any]:
    return cache.put if hasattr(cache, "put") else cache.__setitem__


def plain_cases(size: int) -> tuple[list[Case], list[Case]]:
    """Hit cases and miss+put cases for every baseline and agentstat's plain caches."""
    keys = _keys(size)
    p = f"{size:,}"
    hit_base, miss_base = f"{p} hit: {ODICT}", f"{p} miss+put: {ODICT}"
    d, d_miss = _odict(keys), _odict(keys)
    hits = [
        Case(f"{p} hit: {EMPTY}", stmt_runner("pass", {})),
        Case(f"{p} hit: {KEYS}", _hits("nxt()", {}, keys)),
        Case(hit_base, _hits(ODICT_HIT, {"get": d.get, "move": d.move_to_end}, keys)),
    ]
    misses = [
        Case(
            miss_base,
            _misses(ODICT_MISS, {"get": d_miss.get, "d": d_miss, "pop": d_miss.popitem}, size),
        )
    ]
    for label, factory, sentinel in _get_put_factories(size):
        cache = factory()
        _fill(_put(cache), keys)
        hits.append(
            Case(f"{p} hit: {label}", _hits("get(nxt())", {"get": cache.get}, keys), hit_base)
        )
        cache = factory()
        _fill(_put(cache), keys)
        ns = {"get": cache.get, "put": _put(cache), "M": sentinel}
        misses.append(Case(f"{p} miss+put: {label}", _misses(GET_PUT, ns, size), miss_base))
    for label, make in (("functools.lru_cache", _lru_function), (DECORATOR, _cached_function)):
        f_hit, f_miss = make(size, keys), make(size, keys)
        hits.append(Case(f"{p} hit: {label}", _hits("f(nxt())", {"f": f_hit}, keys), hit_base))
        misses.append(
            Case(f"{p} miss+put: {label}", _misses("f(nxt())", {"f": f_miss}, size), miss_base)
        )
    floor = _FloorLRU(keys)
    hits.append(Case(f"{p} hit: {FLOOR}", _hits("get(nxt())", {"get": floor.get}, keys), hit_base))
    hits.append(Case(f"{p} hit: {CLOCK}", stmt_runner("m()", {"m": time.monotonic})))
    counted = Cache(size, TTL, name="bench-counting")
    hits.append(
        Case(
            f"{p} hit: {COUNTING}",
            stmt_runner("c._counts.hits += 1", {"c": counted}),
            f"{p} hit: {TTL_CACHE}",
        )
    )
    return hits, misses


def tiered_cases(size: int) -> list[Case]:
    """Hot-tier hits and miss+put of agentstat's tiered cache and the list-based tiers
    (10/30/60 %)."""
    hot, warm = size // 10, size * 3 // 10
    cold = size - hot - warm
    hot_keys = _keys(hot)
    p = f"{size:,} tiered"
    tiers = (Tier("hot", hot, 300.0), Tier("warm", warm, 1800.0), Tier("cold", cold, 3600.0))
    cases: list[Case] = []
    for label, factory, sentinel in (
        (LIST_TIERS, lambda: ListTiered(hot, warm, cold), LIST_MISSING),
        (TIERED, lambda: TieredCache(tiers, name="bench-tiered"), MISSING),
    ):
        base = None if label == LIST_TIERS else LIST_TIERS
        cache = factory()
        _fill(cache.put, hot_keys)
        cases.append(
            Case(
                f"{p} hot hit: {label}",
                _hits("get(nxt())", {"get": cache.get}, hot_keys),
                base and f"{p} hot hit: {base}",
            )
        )
        cache = factory()
        _fill(cache.put, hot_keys)
        ns = {"get": cache.get, "put": cache.put, "M": sentinel}
        cases.append(
            Case(
                f"{p} miss+put: {label}",
                _misses(GET_PUT, ns, size),
                base and f"{p} miss+put: {base}",
            )
        )
    return cases


def run(mode: Mode, report: Report) -> None:
    """Measure every size; then evaluate the counting, TTL-hit and flatness targets."""
    for size in mode.cache_sizes:
        hits, misses = plain_cases(size)
        measure(SECTION, hits, mode, report)
        measure(SECTION, misses, mode, report)
        measure(SECTION, tiered_cases(size), mode, report)
    _timed(mode, report)


def _timed(mode: Mode, report: Report) -> None:
    value = {r.name: r.value for r in report.rows if r.section == SECTION}
    for size in mode.cache_sizes:
        p = f"{size:,}"
        counting = value[f"{p} hit: {COUNTING}"]
        report.target(
            SECTION,
            f"{p}: counting cost per hit",
            f"{counting:,.0f} ns",
            f"≤ {COUNTING_LIMIT_NS:g} ns",
            counting <= COUNTING_LIMIT_NS,
            f"includes the timeit loop ({value[f'{p} hit: {EMPTY}']:,.0f} ns alone)",
        )
        ttl, odict = value[f"{p} hit: {TTL_CACHE}"], value[f"{p} hit: {ODICT}"]
        keys = value[f"{p} hit: {KEYS}"]
        report.target(
            SECTION,
            f"{p}: TTL cache hit vs OrderedDict hit",
            f"{ttl / odict:.2f}×",
            f"≤ {TTL_FACTOR:g}×",
            ttl <= TTL_FACTOR * odict,
            f"{ttl:,.0f} vs {odict:,.0f} ns, both incl. {keys:,.0f} ns key iteration",
        )
    small, large = min(mode.cache_sizes), max(mode.cache_sizes)
    if small != large:
        s, b = f"{small:,}", f"{large:,}"
        growth = value[f"{b} hit: {TTL_CACHE}"] / value[f"{s} hit: {TTL_CACHE}"]
        odict_growth = value[f"{b} hit: {ODICT}"] / value[f"{s} hit: {ODICT}"]
        list_growth = value[f"{b} hit: {LIST}"] / value[f"{s} hit: {LIST}"]
        limit = max(FLAT_FACTOR, odict_growth)
        report.target(
            SECTION,
            f"TTL cache hit flat {s} → {b}",
            f"{growth:.2f}×",
            f"≤ {limit:.2f}× (max of {FLAT_FACTOR:g}× and OrderedDict's own growth)",
            growth <= limit,
            f"OrderedDict {odict_growth:.2f}×, list-based O(n) LRU {list_growth:.1f}×",
        )
