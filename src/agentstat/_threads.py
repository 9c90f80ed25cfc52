"""agentstat's own threads leave the process's signals to the application's threads.

A signal sent to a process (SIGTERM from a pool's ``terminate()``, SIGINT from Ctrl-C)
is delivered to one of its threads, and CPython runs Python signal handlers in the main
thread only. If the kernel hands the signal to one of agentstat's threads while the main
thread is blocked in C (a ``multiprocessing`` lock's ``sem_wait``), nothing wakes the
main thread: its handler never runs and the process hangs, as a pool worker did about
once in thirty terminations under load. Every thread agentstat starts therefore blocks
SIGTERM and SIGINT before it does anything else.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable
from typing import Any

_LEFT_TO_THE_APP = {signal.SIGTERM, signal.SIGINT}


def daemon_thread(target: Callable[..., Any], name: str, args: tuple = ()) -> threading.Thread:
    """A daemon thread (not started) running ``target(*args)`` with SIGTERM and SIGINT
    blocked."""

    def run() -> None:
        with contextlib.suppress(AttributeError, OSError, ValueError):  # not on every OS
            signal.pthread_sigmask(signal.SIG_BLOCK, _LEFT_TO_THE_APP)
        target(*args)

    return threading.Thread(target=run, name=name, daemon=True)
