"""Reading a protected ``/metrics`` page: the client side of the web configuration file.

``agentstat check`` reads pages with :func:`make_fetch`; with a CA file, a client
certificate and basic-auth credentials it reads the same TLS endpoints Prometheus
scrapes (see docs/endpoint.md).
"""

from __future__ import annotations

import base64
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from agentstat.errors import AgentstatError, ConfigError


class ScrapeError(AgentstatError):
    """A page could not be read; the message names the URL and the reason."""


@dataclass(frozen=True)
class Credentials:
    """How to reach a protected page. Every field is optional."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    username: str | None = None
    password: str | None = None

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client TLS context, or None to use the defaults (and no client certificate)."""
        if not (self.ca_file or self.cert_file):
            return None
        if bool(self.cert_file) != bool(self.key_file):
            raise ConfigError("a client certificate needs both --cert-file and --key-file")
        try:
            context = ssl.create_default_context(cafile=self.ca_file)
            if self.cert_file and self.key_file:
                context.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load TLS files: {exc}") from exc
        return context

    def authorization(self) -> str | None:
        """The ``Authorization`` header value, or None without a user name."""
        if self.username is None:
            return None
        if ":" in self.username:
            raise ConfigError("a basic-auth user name cannot contain ':'")
        token = f"{self.username}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(token).decode()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: a 3xx is reported as an error naming where it points."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        raise urllib.error.HTTPError(
            req.full_url, code, f"redirect to {newurl} not followed", headers, fp
        )


def make_fetch(
    credentials: Credentials | None = None, timeout: float = 10.0
) -> Callable[[str], str]:
    """A function returning the text of the page at a URL (ScrapeError if it cannot)."""
    credentials = credentials or Credentials()
    context = credentials.ssl_context()
    authorization = credentials.authorization()

    # No redirects: urllib would send the Authorization header to whatever host a
    # redirect names (another host, or from https to http). Prometheus does not follow
    # them with credentials either.
    opener = urllib.request.build_opener(_NoRedirect, urllib.request.HTTPSHandler(context=context))

    def fetch(url: str) -> str:
        request = urllib.request.Request(url)
        if authorization is not None:
            request.add_header("Authorization", authorization)
        try:
            with opener.open(request, timeout=timeout) as response:
                body: bytes = response.read()
                return body.decode("utf-8")
        except urllib.error.HTTPError as exc:
            raise ScrapeError(f"cannot read {url}: HTTP {exc.code} {exc.reason}") from exc
        except (OSError, ValueError) as exc:
            raise ScrapeError(f"cannot read {url}: {exc}") from exc

    return fetch
