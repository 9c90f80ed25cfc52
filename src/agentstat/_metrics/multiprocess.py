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
  nothing else handles it (pool workers ended by ``with Pool(...)``); see
  :mod:`agentstat._metrics.member`. A SIGKILLed member loses at most its last second.
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
import os
import shutil
import tempfile
import threading
import time

from agentstat._metrics import member, store
from agentstat._metrics.gil import checkpoint
from agentstat._metrics.snapshot import Snapshot, merge, read_file, write_file
from agentstat.environment_variables import AGENTSTAT_MULTIPROCESS_DIR

_logger = logging.getLogger("agentstat")

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


def server_pid(directory: str) -> int | None:
    """The pid of the live process serving ``directory``, if any."""
    payload = read_file(os.path.join(directory, _SERVER))
    if payload is None:
        return None
    pid = payload[0]
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
        payload = read_file(retired_path)
        folded: set[str] = set()
        retired = Snapshot()
        if payload is not None:
            with contextlib.suppress(Exception):  # unreadable: start the retired totals anew
                folded, retired = set(payload[0]), Snapshot.from_builtin(payload[1])
        live: list[tuple[str, Snapshot, bool]] = []
        dead: list[tuple[str, Snapshot]] = []
        try:
            names = sorted(os.listdir(self.directory))
        except OSError:
            return []
        for name in names:
            if not name.endswith(".snap") or name == _RETIRED or name in folded:
                continue
            checkpoint()  # a scrape hands the GIL over (agentstat._metrics.gil)
            part = read_file(os.path.join(self.directory, name))
            try:
                pid, snapshot = int(part[0]), Snapshot.from_builtin(part[1])  # type: ignore[index]
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
                write_file(retired_path, (sorted(folded), retired.to_builtin()))
                for name, _ in dead:
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(self.directory, name))
                folded = {n for n in folded if os.path.exists(os.path.join(self.directory, n))}
            except OSError:
                _logger.warning("agentstat: could not compact %s", self.directory, exc_info=True)
        if payload is None and not dead:
            return live
        return [("retired", retired, False), *live]


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
    # No SIGTERM handler here: a Python-level handler would change how the host app dies
    # (it waits for the main thread to leave C code). A server killed by a signal leaves
    # its directory behind, and the next server on the host sweeps it (_sweep).
    atexit.register(_remove_owned)
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
    global _directory
    member.stop(remove=True)  # it joined before it served: its memory is read directly
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
    write_file(os.path.join(path, _SERVER), (os.getpid(), host, port, time.time_ns()))
    _directory = path
    _share_admission(path)
    chosen = MultiProcess(path, serving=True)
    store.use(chosen)
    return chosen


def join(path: str) -> None:
    """Make this process a member of ``path``: its values reach the server's page."""
    global _directory
    if member.current() is not None and _directory == path:
        return
    _directory = path
    _share_admission(path)
    store.use(MultiProcess(path, serving=False))
    member.start(path)


def join_from_environment() -> None:
    """Join the directory named by ``AGENTSTAT_MULTIPROCESS_DIR``, if any and not yet."""
    path = os.environ.get(AGENTSTAT_MULTIPROCESS_DIR, "").strip()
    if path and _directory is None and os.path.isdir(path):
        join(path)


def leave() -> None:
    """Back to in-process storage, this process alone (tests; a server never needs it)."""
    global _directory, _owned
    from agentstat._metrics import caps

    member.stop()
    _directory = None
    caps.share_admission(None)
    store.use(store.InProcess())
    if _owned is not None and _owned[0] == os.getpid():
        _remove_owned()
        if os.environ.get(AGENTSTAT_MULTIPROCESS_DIR) == _owned[1]:
            del os.environ[AGENTSTAT_MULTIPROCESS_DIR]
    _owned = None


def _after_fork_in_child() -> None:
    global _owned
    _owned = None
    member.forget_after_fork()
    if _directory is not None:
        join(_directory)


store.on_fork_in_child(_after_fork_in_child)
