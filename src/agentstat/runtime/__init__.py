"""Runtime primitives that count themselves: caches, ``cached``, load balancing, retries.

Import them from :mod:`agentstat` (``agentstat.Cache``, ``agentstat.LoadBalancer``, …);
the modules here hold one primitive each.
"""
