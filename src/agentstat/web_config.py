"""The web configuration file: TLS, client certificates and basic auth for ``/metrics``.

The format is the Prometheus exporter-toolkit's (``--web.config.file`` of node_exporter
and of Prometheus itself), so a file written for them works here::

    tls_server_config:
      cert_file: server.crt            # relative paths are relative to this file
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert
      client_ca_file: ca.crt
      min_version: TLS12
    basic_auth_users:
      prometheus: $2b$12$...           # bcrypt hash: htpasswd -nBC 12 "" | tr -d ':\\n'
    http_server_config:
      headers:
        X-Content-Type-Options: nosniff

Name it with ``AGENTSTAT_WEB_CONFIG_FILE`` or ``web_config_file`` in ``[tool.agentstat]``.
Everything is checked when the file is loaded — the certificate and key are loaded, the
CA file read, every hash parsed — so a mistake is one :class:`~agentstat.ConfigError`
naming the file, the key and the reason, and the endpoint is then not served at all:
never served open because its protection could not be read.

Supported ``client_auth_type`` values are ``NoClientCert``, ``VerifyClientCertIfGiven``
and ``RequireAndVerifyClientCert`` (Python's TLS cannot request a certificate without
verifying it). ``cipher_suites``, ``curve_preferences``, ``client_allowed_sans`` and
``http2`` are refused with a message rather than ignored.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentstat.errors import ConfigError

CLIENT_AUTH_TYPES: dict[str, ssl.VerifyMode] = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
TLS_VERSIONS: dict[str, ssl.TLSVersion] = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
_TLS_KEYS = {
    "cert_file",
    "key_file",
    "client_auth_type",
    "client_ca_file",
    "min_version",
    "max_version",
}
_UNSUPPORTED = {
    "cipher_suites",
    "curve_preferences",
    "prefer_server_cipher_suites",
    "client_allowed_sans",
    "http2",
    "cert",
    "key",
}
_BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")


@dataclass(frozen=True)
class WebConfig:
    """A loaded web configuration; ``ssl_context`` is None when TLS is off."""

    source: str
    ssl_context: ssl.SSLContext | None = None
    basic_auth_users: Mapping[str, bytes] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_context is not None else "http"


def _table(where: str, value: Any, allowed: set[str]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping, not {type(value).__name__}")
    for key in value:
        if key in _UNSUPPORTED:
            raise ConfigError(f"{where}.{key} is not supported by agentstat; remove it")
        if key not in allowed:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(allowed))})")
    return value


def _file(where: str, base: Path, value: Any) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} must be a file path")
    path = Path(value)
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        raise ConfigError(f"{where}: {path} does not exist or is not a file")
    return path


def _ssl_context(source: str, base: Path, tls: dict[str, Any]) -> ssl.SSLContext:
    where = f"{source}: tls_server_config"
    if "cert_file" not in tls or "key_file" not in tls:
        raise ConfigError(f"{where} needs both cert_file and key_file")
    cert = _file(f"{where}.cert_file", base, tls["cert_file"])
    key = _file(f"{where}.key_file", base, tls["key_file"])
    auth = tls.get("client_auth_type", "NoClientCert")
    if auth not in CLIENT_AUTH_TYPES:
        raise ConfigError(
            f"{where}.client_auth_type {auth!r} is not supported "
            f"(supported: {', '.join(CLIENT_AUTH_TYPES)})"
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = TLS_VERSIONS["TLS12"]
    for name in ("min_version", "max_version"):
        if name in tls:
            if tls[name] not in TLS_VERSIONS:
                raise ConfigError(
                    f"{where}.{name} {tls[name]!r} is not one of {', '.join(TLS_VERSIONS)}"
                )
            setattr(context, f"{name.split('_')[0]}imum_version", TLS_VERSIONS[tls[name]])
    try:
        context.load_cert_chain(certfile=str(cert), keyfile=str(key))
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"{where}: cannot load {cert} with {key}: {exc}") from exc
    if "client_ca_file" in tls:
        ca = _file(f"{where}.client_ca_file", base, tls["client_ca_file"])
        try:
            context.load_verify_locations(cafile=str(ca))
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"{where}.client_ca_file: cannot load {ca}: {exc}") from exc
    elif auth != "NoClientCert":
        raise ConfigError(f"{where}.client_auth_type {auth} needs client_ca_file")
    context.verify_mode = CLIENT_AUTH_TYPES[auth]
    return context


def _users(source: str, value: Any) -> dict[str, bytes]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: basic_auth_users must map user names to bcrypt hashes")
    users: dict[Any, Any] = value
    found: dict[str, bytes] = {}
    for user, hashed in users.items():
        if not isinstance(user, str) or not user or ":" in user:
            raise ConfigError(f"{source}: basic_auth_users: {user!r} is not a valid user name")
        if not isinstance(hashed, str) or not hashed.startswith(_BCRYPT_PREFIXES):
            raise ConfigError(
                f"{source}: basic_auth_users.{user} must be a bcrypt hash "
                f"(starting with $2a$, $2b$ or $2y$)"
            )
        found[user] = hashed.encode()
    if found:
        try:
            import bcrypt
        except ImportError as exc:
            raise ConfigError(
                f"{source}: basic_auth_users needs the bcrypt package: pip install 'agentstat[web]'"
            ) from exc
        for user, hashed in found.items():
            try:
                bcrypt.checkpw(b"", hashed)
            except ValueError as exc:
                raise ConfigError(
                    f"{source}: basic_auth_users.{user} is not a valid bcrypt hash: {exc}"
                ) from exc
    return found


def load_web_config(path: str | Path) -> WebConfig:
    """Read and check the web configuration file at ``path``; ConfigError if it is wrong."""
    import yaml

    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ConfigError(f"cannot read web config file {source}: {reason}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(f"web config file {source} is not valid YAML{where}: {problem}") from exc
    top = _table(
        f"web config file {source}",
        data,
        {"tls_server_config", "basic_auth_users", "http_server_config"},
    )
    base = path.resolve().parent
    tls = _table(f"{source}: tls_server_config", top.get("tls_server_config"), _TLS_KEYS)
    http = _table(f"{source}: http_server_config", top.get("http_server_config"), {"headers"})
    headers = http.get("headers") or {}
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise ConfigError(f"{source}: http_server_config.headers must map strings to strings")
    return WebConfig(
        source=source,
        ssl_context=_ssl_context(source, base, tls) if tls else None,
        basic_auth_users=_users(source, top.get("basic_auth_users")),
        headers=dict(headers),
    )
