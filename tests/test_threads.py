"""agentstat's own threads leave SIGTERM and SIGINT to the application's threads."""

from __future__ import annotations

import signal
import tempfile
import threading
from pathlib import Path

from agentstat._metrics import member, multiprocess
from agentstat._threads import daemon_thread


def _blocked(native_id: int) -> int:
    """The signal mask of thread ``native_id`` of this process (Linux /proc)."""
    status = Path(f"/proc/self/task/{native_id}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("SigBlk:"))[7:], 16)


def _blocks_term_and_int(mask: int) -> bool:
    return all(mask & (1 << (sig - 1)) for sig in (signal.SIGTERM, signal.SIGINT))


def test_a_daemon_thread_blocks_sigterm_and_sigint_and_the_main_thread_does_not() -> None:
    """So the kernel hands a process-directed SIGTERM to a thread that runs Python
    handlers (a pool worker blocked in a lock then still dies of pool.terminate())."""
    seen: list[set[int]] = []
    thread = daemon_thread(lambda: seen.append(signal.pthread_sigmask(signal.SIG_BLOCK, [])), "t")
    thread.start()
    thread.join()
    assert {signal.SIGTERM, signal.SIGINT} <= seen[0]
    assert not _blocks_term_and_int(_blocked(threading.main_thread().native_id))


def test_the_snapshot_writer_of_a_member_blocks_them_too() -> None:
    with tempfile.TemporaryDirectory(prefix="agentstat-test-") as path:
        multiprocess.join(path)
        try:
            writer = member.current()
            assert writer is not None
            assert _blocks_term_and_int(_blocked(writer._thread.native_id))
        finally:
            multiprocess.leave()
