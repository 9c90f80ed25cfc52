"""One ``/metrics`` for every process of a server: the multi-process storage.

Recording stays in each process's memory (the hot path is the same with or without
this module). What changes is where the serving process's endpoint reads from:

- The process that serves ``/metrics`` (the *server*: under ``opentelemetry-instrument``
  the first instrumented process, e.g. gunicorn's or uvicorn's supervisor) creates a
  private directory (``mkdtemp``, mode 0700) and names it in ``AGENTSTAT_MULTIPROCESS_DIR``,
  which forked and spawned children inherit. The directory is this server's alone: two
  servers on one host never share or wipe each other's state. The server removes it at
  exit; directories of servers that died without exiting are swept by the next one.
- Every other process of the server (a *member*: forked workers, spawned workers, pool
  processes) writes a snapshot of its memory to its own file there, from a daemon thread
  at most once a second when something changed, and at exit: ``atexit``, threading's exit
  hook (multiprocessing's forked children leave through ``os._exit``) and SIGTERM where
  nothing else handles it (pool workers ended by ``with Pool(...)``). A SIGKILLed member
  loses at most its last second.
- At each scrape the server adds its own memory and every file: counters and
  histograms over all processes, live and exited (exited ones are folded into one
  ``retired`` file, so they never go down); gauges only from live processes, each with
  its ``process.pid`` once the page adds up more than one process (a single process's
  page is unchanged). A forked child starts from zero (:mod:`agentstat._metrics.store`),
  so nothing is counted twice, and a replacement worker adds from zero.
- A process started some other way joins by having ``AGENTSTAT_MULTIPROCESS_DIR`` set
  when it imports agentstat. If no live server owns the directory, the first process
  that starts an endpoint serves it, and the files of processes that died before it
  (an earlier run) are removed.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import json
import logging
import marshal
import os
import shutil
import signal
import tempfile
import threading
import time
import uuid
from typing import Any

from agentstat._metrics import store
from agentstat._metrics.snapshot import Snapshot, merge
from agentstat.environment_variables import AGENTSTAT_MULTIPROCESS_DIR

_logger = logging.getLogger("agentstat")

#: Seconds between two snapshots of a member (when something changed).
FLUSH_INTERVAL = 1.0
_FORMAT = 1
_PREFIX = "agentstat-mp-"
_SERVER = "server"
_RETIRED = "retired.snap"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _write(path: str, payload: Any) -> None:
    """Write atomically: a reader sees the old file or the new one, never a part."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(marshal.dumps(payload))
    os.replace(tmp, path)


def _read(path: str) -> Any:
    try:
        with open(path, "rb") as f:
            payload = marshal.loads(f.read())
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if not isinstance(payload, tuple) or not payload or payload[0] != _FORMAT:
        return None
    return payload


def server_pid(directory: str) -> int | None:
    """The pid of the live process serving ``directory``, if any."""
    payload = _read(os.path.join(directory, _SERVER))
    if payload is None:
        return None
    pid = payload[1]
    return pid if isinstance(pid, int) and _alive(pid) else None


class _Admission:
    """Cap admission shared through ``<directory>/names-<hash>`` files (one per capped
    namespace, one JSON string per line, appended under ``lockf``): the first ``limit``
    distinct values any process meets are admitted in every process; later ones are
    ``_OTHER`` in every process. One lock and read per new value per process."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def __call__(self, key: str, value: str, limit: int) -> tuple[bool, list[str] | None]:
        digest = hashlib.sha1(key.encode()).hexdigest()[:16]
        path = os.path.join(self.directory, f"names-{digest}")
        try:
            with open(path, "a+", encoding="utf-8") as f:
                # lockf, not flock: a POSIX lock belongs to this process, so a child
                # forked while a thread holds it does not hold it forever.
                fcntl.lockf(f, fcntl.LOCK_EX)
                f.seek(0)
                known = [json.loads(line) for line in f.read().splitlines() if line]
                if value in known:
                    return True, known if len(known) >= limit else None
                if len(known) >= limit:
                    return False, known
                f.write(json.dumps(value) + "\n")
                f.flush()
                known.append(value)
                return True, known if len(known) >= limit else None
        except (OSError, ValueError):
            return True, None  # the directory is gone or unreadable: decide alone

    def publish(self) -> None:
        """Put what this process admitted before it joined into the shared lists."""
        from agentstat._metrics.caps import CAPS

        for cap in CAPS.all():
            if cap.key:
                for value in cap.admitted():
                    self(cap.key, value, cap.limit)


def _share_admission(path: str) -> None:
    from agentstat._metrics import caps

    admission = _Admission(path)
    admission.publish()
    caps.share_admission(admission)


class MultiProcess:
    """The storage of one process that belongs to a multi-process directory."""

    def __init__(self, directory: str, *, serving: bool) -> None:
        self.directory = directory
        self.serving = serving
        self._lock = threading.Lock()

    @property
    def start_time_unix_nano(self) -> int:
        return store.STORE.start_time_unix_nano

    def collect(self, *, all_processes: bool) -> Snapshot:
        own = store.local_snapshot()
        if not all_processes:
            return own
        with self._lock:
            parts = self._read_all(own.bounds)
        if not parts:  # no other process yet: the page of a single process, unchanged
            return own
        return merge([(str(os.getpid()), own, True), *parts], own.bounds)

    def _read_all(self, bounds: dict[str, tuple[float, ...]]) -> list[tuple[str, Snapshot, bool]]:
        """Every member's snapshot; exited members' files folded into the retired one."""
        retired_path = os.path.join(self.directory, _RETIRED)
        payload = _read(retired_path)
        folded: set[str] = set()
        retired = Snapshot()
        if payload is not None:
            with contextlib.suppress(Exception):  # unreadable: start the retired totals anew
                folded, retired = set(payload[1]), Snapshot.from_builtin(payload[2])
        live: list[tuple[str, Snapshot, bool]] = []
        dead: list[tuple[str, Snapshot]] = []
        try:
            names = sorted(os.listdir(self.directory))
        except OSError:
            return []
        for name in names:
            if not name.endswith(".snap") or name == _RETIRED or name in folded:
                continue
            part = _read(os.path.join(self.directory, name))
            try:
                pid, snapshot = int(part[1]), Snapshot.from_builtin(part[2])
            except Exception:  # not a snapshot this version wrote: leave it out
                continue
            if pid == os.getpid():
                continue  # this process's own file (it joined before it served)
            if _alive(pid):
                live.append((str(pid), snapshot, True))
            else:
                dead.append((name, snapshot))
        if dead:
            parts = [("retired", retired, False)]
            parts += [(name, snapshot, False) for name, snapshot in dead]
            retired = merge(parts, {**retired.bounds, **bounds})
            folded |= {name for name, _ in dead}
            try:
                _write(retired_path, (_FORMAT, sorted(folded), retired.to_builtin()))
                for name, _ in dead:
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(self.directory, name))
                folded = {n for n in folded if os.path.exists(os.path.join(self.directory, n))}
            except OSError:
                _logger.warning("agentstat: could not compact %s", self.directory, exc_info=True)
        if payload is None and not dead:
            return live
        return [("retired", retired, False), *live]


class _Writer:
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
        self._thread = threading.Thread(target=self._run, name="agentstat-snapshot", daemon=True)
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
            _write(self.path, (_FORMAT, self.pid, data))
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


_writer: _Writer | None = None
_directory: str | None = None
_owned: tuple[int, str] | None = None  # (pid, directory) this process created


def directory() -> str | None:
    """The multi-process directory this process belongs to, if any."""
    return _directory


def create() -> str:
    """Create this server's private directory and export it to children."""
    global _owned
    _sweep()
    path = tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-")
    os.environ[AGENTSTAT_MULTIPROCESS_DIR] = path
    _owned = (os.getpid(), path)
    atexit.register(_remove_owned)
    _flush_on_sigterm()  # a server killed by SIGTERM removes its directory too
    return path


def _remove_owned() -> None:
    if _owned is not None and _owned[0] == os.getpid():
        shutil.rmtree(_owned[1], ignore_errors=True)


def _sweep() -> None:
    """Remove directories of servers (of this user) that died without cleaning up."""
    base = tempfile.gettempdir()
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        if not name.startswith(_PREFIX):
            continue
        pid = name[len(_PREFIX) :].split("-", 1)[0]
        path = os.path.join(base, name)
        with contextlib.suppress(OSError, ValueError):
            if os.stat(path).st_uid == os.getuid() and not _alive(int(pid)):
                shutil.rmtree(path, ignore_errors=True)


def serve(path: str, host: str, port: int) -> MultiProcess:
    """Make this process the server of ``path``: its endpoint adds every member's file."""
    global _directory, _writer
    if _writer is not None:
        _writer.stop(remove=True)
        _writer = None
    if server_pid(path) is None:  # a new run: what dead processes left is stale
        names = os.listdir(path)
        pids = [n.split("-")[1] for n in names if n.startswith("p-") and n.count("-") >= 2]
        members = any(pid.isdigit() and _alive(int(pid)) for pid in pids)
        for name in names:
            pid = name.split("-")[1] if name.startswith("p-") else ""
            stale = name == _RETIRED or (name.startswith("names-") and not members)
            if stale or (pid.isdigit() and not _alive(int(pid))):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(path, name))
    _write(os.path.join(path, _SERVER), (_FORMAT, os.getpid(), host, port, time.time_ns()))
    _directory = path
    _share_admission(path)
    chosen = MultiProcess(path, serving=True)
    store.use(chosen)
    return chosen


def join(path: str) -> None:
    """Make this process a member of ``path``: its values reach the server's page."""
    global _directory, _writer
    if _writer is not None and _writer.pid == os.getpid() and _directory == path:
        return
    _directory = path
    _share_admission(path)
    store.use(MultiProcess(path, serving=False))
    writer = _writer = _Writer(path)
    atexit.register(writer.flush)
    register = getattr(threading, "_register_atexit", None)
    if register is not None:  # multiprocessing's forked children exit with os._exit
        with contextlib.suppress(Exception):
            register(writer.flush)
    _flush_on_sigterm()
    _flush_on_celery_child_exit()


def _die_of_sigterm() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _on_sigterm(signum: int, frame: Any) -> None:
    """Flush this process's snapshot, then die of SIGTERM as if nothing had caught it."""
    writer = _writer
    if writer is not None and writer.pid == os.getpid():
        if writer.in_flush_here():  # SIGTERM interrupted a flush: finish it, then die
            writer.die_after_flush = True
            return
        writer.flush_soon(timeout=2.0)
    _remove_owned()
    _die_of_sigterm()


def _flush_on_sigterm() -> None:
    """Where SIGTERM would kill at once (no handler of the program's own), flush first
    (a member) or remove the directory (the server that created it)."""
    if threading.current_thread() is not threading.main_thread():
        return
    with contextlib.suppress(ValueError, OSError):
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, _on_sigterm):
            signal.signal(signal.SIGTERM, _on_sigterm)


def _flush_at_exit(*args: Any, **kwargs: Any) -> None:
    if _writer is not None:
        _writer.flush()


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


def join_from_environment() -> None:
    """Join the directory named by ``AGENTSTAT_MULTIPROCESS_DIR``, if any and not yet."""
    path = os.environ.get(AGENTSTAT_MULTIPROCESS_DIR, "").strip()
    if path and _directory is None and os.path.isdir(path):
        join(path)


def leave() -> None:
    """Back to in-process storage, this process alone (tests; a server never needs it)."""
    global _directory, _writer, _owned
    from agentstat._metrics import caps

    if _writer is not None:
        _writer.stop()
    _writer, _directory = None, None
    caps.share_admission(None)
    store.use(store.InProcess())
    if _owned is not None and _owned[0] == os.getpid():
        _remove_owned()
        if os.environ.get(AGENTSTAT_MULTIPROCESS_DIR) == _owned[1]:
            del os.environ[AGENTSTAT_MULTIPROCESS_DIR]
    _owned = None


def _after_fork_in_child() -> None:
    global _owned, _writer
    _owned = None
    _writer = None
    if _directory is not None:
        join(_directory)


store.on_fork_in_child(_after_fork_in_child)
