"""``python pool.py KIND CALLS DONE``: CALLS agent calls in a pool of two processes, then
write the workers' pids to DONE and keep running (the test scrapes, then stops us).

KIND is a multiprocessing start method (``fork``, ``spawn``, ``forkserver``: a
``with Pool(...)`` block, which ends its workers with SIGTERM right after the last
result) or ``executor`` (``ProcessPoolExecutor`` with spawn). Every fourth call is slow.
"""

import concurrent.futures
import multiprocessing
import sys
import time

import mp_agents


def work(i: int) -> int:
    return mp_agents.planner(0.06 if i % 4 == 0 else 0.0)


if __name__ == "__main__":
    kind, calls, done = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if kind == "executor":
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as executor:
            pids = set(executor.map(work, range(calls)))
    else:
        with multiprocessing.get_context(kind).Pool(2) as pool:
            pids = set(pool.map(work, range(calls), chunksize=1))
    with open(done, "w") as f:
        f.write(" ".join(str(pid) for pid in sorted(pids)))
    time.sleep(600)
