"""The ``/metrics`` HTTP server: TLS, basic auth, bounded concurrency and timeouts.

Why not prometheus_client's ``start_http_server``: its listen backlog is 5 (50
concurrent scrapers overflowed it and 4 % of scrapes timed out), it never times out a
connection (300 idle connections held 300 threads), it performs the TLS handshake in
the accept loop (one client that never finishes its handshake stalls every scrape), and
it has no authentication. This server serves a WSGI app that answers as
prometheus_client's does (:mod:`agentstat._metrics.page`) and fixes the transport:

- a listen backlog of :data:`BACKLOG` (128);
- every connection is handled on its own thread, with the TLS handshake done there;
  every socket operation times out after :data:`CONNECTION_TIMEOUT_SECONDS`, and the
  whole connection is closed :data:`CONNECTION_DEADLINE_SECONDS` after it was
  accepted, so a client trickling one byte at a time cannot hold its slot either;
- at most :data:`MAX_CONCURRENT_REQUESTS` connections are served at once; past that a
  connection gets ``503 Service Unavailable`` with ``Retry-After`` straight away;
- HTTP basic auth against bcrypt hashes from the web configuration file, with
  successful checks cached (bcrypt costs ~50–250 ms by design; a scrape every 15 s
  must not pay it each time) and unknown users checked against a real hash, so timing
  does not tell which users exist.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import socket
import socketserver
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from agentstat._threads import daemon_thread
from agentstat.web_config import WebConfig

BACKLOG = 128
CONNECTION_TIMEOUT_SECONDS = 10.0
CONNECTION_DEADLINE_SECONDS = 30.0
MAX_CONCURRENT_REQUESTS = 64
_REFUSAL_TIMEOUT_SECONDS = 2.0
_AUTH_CACHE_SIZE = 256
_REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 27\r\n"
    b"Retry-After: 1\r\nConnection: close\r\n\r\ntoo many concurrent scrapes\n"
)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr: a scraped endpoint would log every 15 seconds."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class MetricsHTTPServer(socketserver.ThreadingMixIn, WSGIServer):
    """A WSGI server with a real backlog, per-connection TLS handshakes and timeouts, and
    a bound on connections served at once."""

    daemon_threads = True
    request_queue_size = BACKLOG

    def __init__(
        self,
        address: tuple[str, int],
        app: WSGIApp,
        *,
        web_config: WebConfig | None = None,
        max_requests: int = MAX_CONCURRENT_REQUESTS,
        timeout: float = CONNECTION_TIMEOUT_SECONDS,
        deadline: float = CONNECTION_DEADLINE_SECONDS,
    ) -> None:
        if max_requests < 1:
            raise ValueError(f"max_requests must be at least 1, not {max_requests}")
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.ssl_context = web_config.ssl_context if web_config else None
        self.connection_timeout = timeout
        self.connection_deadline = deadline
        self._slots = threading.BoundedSemaphore(max_requests)
        super().__init__(address, _QuietHandler)
        self.set_app(protect(app, web_config) if web_config else app)

    def process_request(self, request: Any, client_address: Any) -> None:
        serving = self._slots.acquire(blocking=False)
        thread = daemon_thread(
            self._connection, "agentstat-metrics-connection", (request, client_address, serving)
        )
        thread.start()

    def _connection(self, request: socket.socket, client_address: Any, serving: bool) -> None:
        connection: socket.socket = request
        deadline = threading.Timer(
            self.connection_deadline if serving else _REFUSAL_TIMEOUT_SECONDS,
            _cut,
            (request,),
        )
        deadline.daemon = True
        deadline.start()
        try:
            request.settimeout(self.connection_timeout if serving else _REFUSAL_TIMEOUT_SECONDS)
            if self.ssl_context is not None:
                connection = self.ssl_context.wrap_socket(request, server_side=True)
            if serving:
                self.RequestHandlerClass(connection, client_address, self)
            else:
                _refuse(connection)
        except (OSError, ValueError):
            pass  # handshake failures, timeouts and resets end that connection only
        finally:
            deadline.cancel()
            if serving:
                self._slots.release()
            for sock in {id(connection): connection, id(request): request}.values():
                with contextlib.suppress(OSError):
                    sock.close()


def _cut(sock: socket.socket) -> None:
    """End a connection past its deadline: the blocked read or write fails at once."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _refuse(connection: socket.socket) -> None:
    """Answer 503 after reading what the client sent, so closing does not reset it."""
    with contextlib.suppress(OSError):
        connection.recv(65536)
    connection.sendall(_REFUSAL)
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_WR)


def _credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.startswith("Basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


def protect(app: WSGIApp, web_config: WebConfig) -> WSGIApp:
    """``app`` behind the configuration's basic auth, adding its response headers."""
    users = dict(web_config.basic_auth_users)
    extra_headers = list(web_config.headers.items())
    if not users and not extra_headers:
        return app
    decoy = next(iter(users.values()), b"")
    verified: set[bytes] = set()
    lock = threading.Lock()
    if users:  # optional (agentstat[web]); load_web_config already checked it is there
        import bcrypt

    def authorized(header: str | None) -> bool:
        found = _credentials(header)
        if found is None:
            return False
        user, password = found
        hashed = users.get(user)
        key = hashlib.sha256(b"\0".join([user.encode(), password.encode(), hashed or b""]))
        digest = key.digest()
        with lock:
            if hashed is not None and digest in verified:
                return True
        try:
            ok = bcrypt.checkpw(password.encode(), hashed or decoy)
        except ValueError:  # bcrypt refuses passwords over 72 bytes: a failed login
            return False
        if not (ok and hashed is not None):
            return False
        with lock:
            if len(verified) >= _AUTH_CACHE_SIZE:
                verified.clear()
            verified.add(digest)
        return True

    def protected(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if users and not authorized(environ.get("HTTP_AUTHORIZATION")):
            start_response(
                "401 Unauthorized",
                [
                    ("WWW-Authenticate", 'Basic realm="agentstat"'),
                    ("Content-Type", "text/plain"),
                    *extra_headers,
                ],
            )
            return [b"Unauthorized\n"]

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, [*headers, *extra_headers], exc_info)

        return app(environ, start)

    return protected


def serve(
    app: WSGIApp,
    host: str,
    port: int,
    web_config: WebConfig | None = None,
    *,
    max_requests: int = MAX_CONCURRENT_REQUESTS,
    timeout: float = CONNECTION_TIMEOUT_SECONDS,
    deadline: float = CONNECTION_DEADLINE_SECONDS,
) -> tuple[MetricsHTTPServer, threading.Thread]:
    """Bind ``host:port`` (OSError if it cannot) and serve ``app`` on a daemon thread."""
    server = MetricsHTTPServer(
        (host, port),
        app,
        web_config=web_config,
        max_requests=max_requests,
        timeout=timeout,
        deadline=deadline,
    )
    thread = daemon_thread(server.serve_forever, "agentstat-metrics-server")
    thread.start()
    return server, thread
