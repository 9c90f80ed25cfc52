"""What a member process of a multi-process server does: keep its snapshot file current.

A :class:`SnapshotWriter` rewrites the process's file from a daemon thread at most every
:data:`FLUSH_INTERVAL` seconds, when something changed, and once more when the process
ends, however it ends:

- ``atexit`` (a normal exit, spawned children);
- threading's exit hook (multiprocessing's forked children leave through ``os._exit``
  after ``threading._shutdown``);
- SIGTERM, where the program has no handler of its own (pool workers ended by
  ``with Pool(...)``): the handler has the writer thread flush (it must not snapshot
  itself: it runs between two bytecodes of the main thread, which may hold a lock a
  snapshot needs), then the process dies of SIGTERM as it would have;
- Celery's ``worker_process_shutdown`` signal (its prefork children leave through
  ``os._exit`` with no hook at all).

A SIGKILLed process loses at most its last :data:`FLUSH_INTERVAL`.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import threading
import uuid
from collections.abc import Callable
from typing import Any

from agentstat._metrics import store
from agentstat._metrics.snapshot import write_file
from agentstat._threads import daemon_thread

_logger = logging.getLogger("agentstat")

#: Seconds between two snapshots of a member (when something changed).
FLUSH_INTERVAL = 1.0


class SnapshotWriter:
    """A member's snapshot file, rewritten by a daemon thread when something changed."""

    def __init__(self, directory: str) -> None:
        self.pid = os.getpid()
        self.path = os.path.join(directory, f"p-{self.pid}-{uuid.uuid4().hex[:8]}.snap")
        self._last: Any = None
        self._lock = threading.RLock()
        self._flushing: int | None = None  # ident of the thread inside flush()
        self._wake = threading.Event()
        self._waiting: list[threading.Event] = []
        self._stopped = False
        self._failed = False
        self.die_after_flush = False
        self._thread = daemon_thread(self._run, "agentstat-snapshot")
        self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait(FLUSH_INTERVAL)
            self._wake.clear()
            if self._stopped:
                return
            waiting, self._waiting = self._waiting, []
            self.flush()
            for done in waiting:
                done.set()

    def flush_soon(self, timeout: float) -> None:
        """Have the writer thread flush now; wait at most ``timeout`` seconds.

        For a signal handler: it runs between two bytecodes of the main thread, which
        may hold a lock a snapshot needs (inside ``observe``), so it must not snapshot
        itself."""
        if not self._thread.is_alive():
            return
        done = threading.Event()
        self._waiting.append(done)
        self._wake.set()
        done.wait(timeout)

    def pause_for_fork(self) -> bool:
        """Hold the flush lock (True) unless a flush is still running after 0.5 s."""
        return self._lock.acquire(timeout=0.5)

    def resume_after_fork(self) -> None:
        self._lock.release()

    def in_flush_here(self) -> bool:
        return self._flushing == threading.get_ident()

    def flush(self) -> None:
        if os.getpid() != self.pid or self._stopped:
            return  # an inherited hook in a forked child (it has its own writer), or left
        with self._lock:
            self._flushing = threading.get_ident()
            try:
                self._flush()
            finally:
                self._flushing = None
        if self.die_after_flush:
            _die_of_sigterm()

    def _flush(self) -> None:
        try:
            snapshot = store.local_snapshot()
            data = snapshot.to_builtin()
            if data == self._last or (self._last is None and snapshot.is_empty()):
                return
            write_file(self.path, (self.pid, data))
            self._last = data
        except Exception as exc:
            if not self._failed:
                self._failed = True
                _logger.warning("agentstat: could not write %s: %s (reported once)", self.path, exc)

    def stop(self, *, remove: bool = False) -> None:
        self._stopped = True
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        if remove and os.getpid() == self.pid:
            with self._lock, contextlib.suppress(OSError):
                os.unlink(self.path)


_writer: SnapshotWriter | None = None
#: Run by the SIGTERM handler before the process dies (the server removes its directory).
_on_terminate: list[Callable[[], None]] = []


def current() -> SnapshotWriter | None:
    """This process's writer, if it is a member."""
    return _writer if _writer is not None and _writer.pid == os.getpid() else None


def start(directory: str) -> SnapshotWriter:
    """Write this process's snapshots into ``directory`` from now on, and at its end."""
    global _writer
    stop()
    writer = _writer = SnapshotWriter(directory)
    atexit.register(writer.flush)
    register = getattr(threading, "_register_atexit", None)
    if register is not None:  # multiprocessing's forked children exit with os._exit
        with contextlib.suppress(Exception):
            register(writer.flush)
    handle_sigterm()
    _flush_on_celery_child_exit()
    return writer


def stop(*, remove: bool = False) -> None:
    """No more snapshots (``remove``: delete the file too)."""
    global _writer
    if _writer is not None and _writer.pid == os.getpid():
        _writer.stop(remove=remove)
    _writer = None


def on_terminate(callback: Callable[[], None]) -> None:
    """Run ``callback`` when SIGTERM ends this process (see :func:`handle_sigterm`)."""
    if callback not in _on_terminate:
        _on_terminate.append(callback)


def _before_fork() -> None:
    """Let a fork happen between two snapshots, not in the middle of one: the child
    then inherits no half-taken state of this thread's (waits at most 0.5 s)."""
    writer = current()
    if writer is not None and writer.pause_for_fork():
        _paused.append(writer)


def _after_fork_in_parent() -> None:
    while _paused:
        _paused.pop().resume_after_fork()


_paused: list[SnapshotWriter] = []
os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent)


def forget_after_fork() -> None:
    """In a forked child: the parent's writer (and its thread) are not this process's."""
    global _writer
    _writer = None
    _paused.clear()  # the parent's lock, held by the forking thread: never released here


def _die_of_sigterm() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _on_sigterm(signum: int, frame: Any) -> None:
    """Flush this process's snapshot, then die of SIGTERM as if nothing had caught it."""
    writer = current()
    if writer is not None:
        if writer.in_flush_here():  # SIGTERM interrupted a flush: finish it, then die
            writer.die_after_flush = True
            return
        writer.flush_soon(timeout=5.0)
    for callback in _on_terminate:
        with contextlib.suppress(Exception):
            callback()
    _die_of_sigterm()


def handle_sigterm() -> None:
    """Where SIGTERM would kill at once (no handler of the program's own), flush first
    (a member) and run the :func:`on_terminate` callbacks, then die of it."""
    if threading.current_thread() is not threading.main_thread():
        return
    with contextlib.suppress(ValueError, OSError):
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, _on_sigterm):
            signal.signal(signal.SIGTERM, _on_sigterm)


def _flush_at_exit(*args: Any, **kwargs: Any) -> None:
    writer = current()
    if writer is not None:
        writer.flush()


def _flush_on_celery_child_exit() -> None:
    """Celery's prefork children leave through ``os._exit`` (no atexit): Celery's
    ``worker_process_shutdown`` signal is their last word."""

    def connect(module: Any) -> None:
        with contextlib.suppress(Exception):
            from celery import signals

            signals.worker_process_shutdown.connect(
                _flush_at_exit, weak=False, dispatch_uid="agentstat-flush"
            )

    try:
        import wrapt

        wrapt.register_post_import_hook(connect, "celery")
    except Exception:
        pass
