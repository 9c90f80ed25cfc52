"""The ``/metrics`` page of agentstat's endpoints: the registry, plus agentstat's families
rendered straight from the store.

:func:`make_wsgi_app` replaces prometheus_client's and answers the same way: ``OPTIONS``,
``405`` for other methods, an empty ``/favicon.ico``, the format chosen by
prometheus_client's own ``choose_encoder`` from ``Accept`` (text 0.0.4 or 1.0.0,
OpenMetrics with its escapings), gzip on ``Accept-Encoding: gzip``, the ``name[]``
filter. :func:`render_page` first runs that encoder on the registry — everything else
on the page: process, platform and GC collectors, the OTel reader's ``target_info`` and
the app's own instruments — inside :func:`agentstat._metrics.bridge.direct_collection`,
so that readers agentstat serves leave its metrics out; then it appends agentstat's
families (:mod:`agentstat._metrics.exposition`), before OpenMetrics' final ``# EOF``.

The whole scrape runs :func:`agentstat._metrics.gil.sliced`: the snapshot, the
multi-process merge and the render hand the GIL over every half millisecond, so an app
thread never waits for CPython's 5 ms switch interval. A failure in agentstat's part is
logged once and the rest of the page is still served.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from prometheus_client.exposition import choose_encoder, gzip_accepted

from agentstat._metrics import bridge, exposition, gil
from agentstat._metrics.store import storage

_logger = logging.getLogger("agentstat")

_EOF = b"# EOF\n"
_GZIP_INPUT = 1 << 20

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_RENDERER = exposition.Renderer()
_failed = False


def render_page(
    registry: Any,
    encoder: Callable[..., bytes],
    names: list[str] | None = None,
    *,
    renderer: exposition.Renderer = _RENDERER,
    pause: Callable[[], None] | None = gil.sleep,
) -> bytes:
    """The whole page in ``encoder``'s format (see the module docstring)."""
    return b"".join(page_chunks(registry, encoder, names, renderer=renderer, pause=pause))


def page_chunks(
    registry: Any,
    encoder: Callable[..., bytes],
    names: list[str] | None = None,
    *,
    renderer: exposition.Renderer = _RENDERER,
    pause: Callable[[], None] | None = gil.sleep,
) -> list[bytes]:
    """:func:`render_page` as the chunks it is made of (served without joining them).
    ``pause``: how the scrape hands the GIL over (None: never, for tests)."""
    target = registry.restricted_registry(names) if names is not None else registry
    with gil.sliced(pause):
        with bridge.direct_collection() as parts:
            rest = encoder(target)
        if not parts:
            return [rest]
        gil.checkpoint()
        ours = _ours(parts, encoder, names, renderer)
    if exposition.dialect_of(encoder).openmetrics and rest.endswith(_EOF):
        return [rest[: -len(_EOF)], *ours, _EOF]
    return [rest, *ours]


def _ours(
    parts: list[bridge.DirectPart],
    encoder: Callable[..., bytes],
    names: list[str] | None,
    renderer: exposition.Renderer,
) -> list[bytes]:
    global _failed
    try:
        return [chunk for part in parts for chunk in _render(part, encoder, names, renderer)]
    except Exception:
        if not _failed:
            _failed = True
            _logger.exception("agentstat: could not render its metrics; serving the rest")
        return []


def _render(
    part: bridge.DirectPart,
    encoder: Callable[..., bytes],
    names: list[str] | None,
    renderer: exposition.Renderer,
) -> list[bytes]:
    if names is not None or not exposition.dialect_of(encoder).direct:
        families = bridge.stock_families(part)
        if names is not None:
            wanted = set(names)
            families = [m for f in families if (m := f._restricted_metric(wanted)) is not None]
        return [exposition.encode(families, encoder)]
    source = part.producer.source or storage()
    renderer.reset_if((id(source), source.start_time_unix_nano))
    snapshot = source.collect(all_processes=part.all_processes)
    gil.checkpoint()
    labels = bridge.reader_labels(part.reader, part.resource)
    return renderer.render(snapshot, encoder, labels, skip=part.stock_names)


def _gzip(chunks: list[bytes]) -> list[bytes]:
    """One gzip stream of ``chunks``, level 9 as ``gzip.compress``. zlib deflates
    without the GIL but takes it back after each call, which a busy app thread makes
    wait up to 5 ms: the page goes in by the megabyte, a few calls, never one big join."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    out: list[bytes] = []
    group: list[bytes] = []
    size = 0
    for chunk in chunks:
        group.append(chunk)
        size += len(chunk)
        if size >= _GZIP_INPUT:
            out.append(compressor.compress(b"".join(group)))
            group, size = [], 0
    out.append(compressor.compress(b"".join(group)))
    out.append(compressor.flush())
    return [chunk for chunk in out if chunk]


def make_wsgi_app(registry: Any, disable_compression: bool = False) -> WSGIApp:
    """A WSGI app serving :func:`render_page` of ``registry`` as prometheus_client's
    ``make_wsgi_app`` serves the registry alone."""

    def metrics_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        method = environ["REQUEST_METHOD"]
        headers: list[tuple[str, str]]
        if method == "OPTIONS":
            status, headers, output = "200 OK", [("Allow", "OPTIONS,GET")], b""
        elif method != "GET":
            status = "405 Method Not Allowed"
            headers = [("Allow", "OPTIONS,GET")]
            output = f"# HTTP {status}: {method}; use OPTIONS or GET\n".encode()
        elif environ.get("PATH_INFO") == "/favicon.ico":
            status, headers, output = "200 OK", [], b""
        else:
            encoder, content_type = choose_encoder(environ.get("HTTP_ACCEPT", ""))
            params = parse_qs(environ.get("QUERY_STRING", ""))
            chunks = page_chunks(registry, encoder, params.get("name[]"))
            status, headers = "200 OK", [("Content-Type", content_type)]
            if not disable_compression and gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING", "")):
                chunks = _gzip(chunks)
                headers.append(("Content-Encoding", "gzip"))
            headers.append(("Content-Length", str(sum(map(len, chunks)))))
            start_response(status, headers)
            return chunks
        start_response(status, headers)
        return [output]

    return metrics_app
