"""What to instrument, from the environment and TOML, with every problem reported
by entry rather than raised: a typo in one path must not take the others down.

Sources, later ones overriding earlier ones key by key:

1. ``[tool.agentstat]`` in ``pyproject.toml`` of the working directory;
2. the TOML file named by ``AGENTSTAT_CONFIG`` (a ``[tool.agentstat]`` table, or keys
   at top level);
3. ``AGENTSTAT_AGENTS``, ``AGENTSTAT_TOOLS``, ``AGENTSTAT_CACHES``,
   ``AGENTSTAT_BALANCERS``, ``AGENTSTAT_STRICT``.

An entry is ``module:qualname`` with an optional ``=name``, or ``=@attribute`` to take
the name from the instance at call time (``myapp:Agent.run=@name`` reads ``self.name``);
in TOML a key holds a list of entries or one comma-separated string.
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise
from pathlib import Path
from typing import Any

from agentstat._metrics.caps import limit_problems
from agentstat.environment_variables import (
    AGENTSTAT_AGENTS,
    AGENTSTAT_BALANCERS,
    AGENTSTAT_CACHES,
    AGENTSTAT_CONFIG,
    AGENTSTAT_DURATION_BUCKETS,
    AGENTSTAT_STRICT,
    AGENTSTAT_TOOLS,
    AGENTSTAT_WEB_CONFIG_FILE,
)
from agentstat.errors import ConfigError
from agentstat.semconv import (
    DURATION_BUCKETS,
    MetricSpec,
)

_logger = logging.getLogger("agentstat")

KINDS = ("agent", "tool", "cache", "balancer")
_ENV = {
    "agent": AGENTSTAT_AGENTS,
    "tool": AGENTSTAT_TOOLS,
    "cache": AGENTSTAT_CACHES,
    "balancer": AGENTSTAT_BALANCERS,
}
_TOML_KEYS = {"agents": "agent", "tools": "tool", "caches": "cache", "balancers": "balancer"}
#: Keys of ``[tool.agentstat]`` read by other functions than :func:`load_config`.
_OTHER_KEYS = ("duration_buckets", "web_config_file")
_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


@dataclass(frozen=True)
class Target:
    """One thing to instrument: where it is and the name it gets in metrics."""

    kind: str
    module: str
    qualname: str
    name: str
    entry: str
    #: ``=@attribute``: read the name from the instance at call time (``name`` is then
    #: the fallback, the qualname); dotted attributes allowed.
    name_from: str | None = None

    @property
    def path(self) -> str:
        return f"{self.module}:{self.qualname}"


@dataclass(frozen=True)
class Config:
    targets: tuple[Target, ...] = ()
    strict: bool = False
    #: problems found while reading; the instrumentor logs them (or raises if strict)
    errors: tuple[ConfigError, ...] = field(default=(), compare=False)

    def of_kind(self, kind: str) -> tuple[Target, ...]:
        return tuple(t for t in self.targets if t.kind == kind)


def parse_entry(kind: str, entry: str) -> Target:
    """``"pkg.mod:Class.method=name"`` (or ``=@attribute``) -> :class:`Target`;
    :class:`ConfigError` if malformed."""
    if kind not in KINDS:
        raise ConfigError(f"unknown target kind {kind!r}; expected one of {', '.join(KINDS)}")
    text = entry.strip()
    path, has_name, name = text.partition("=")
    path, name = path.strip(), name.strip()
    module, colon, qualname = path.partition(":")
    if not colon:
        raise ConfigError(f"{kind} entry {text!r}: expected 'module:qualname[=name]', missing ':'")
    if not _DOTTED.match(module):
        raise ConfigError(f"{kind} entry {text!r}: {module!r} is not a module path")
    if not _DOTTED.match(qualname):
        raise ConfigError(f"{kind} entry {text!r}: {qualname!r} is not a qualified name")
    if has_name and not name:
        raise ConfigError(f"{kind} entry {text!r}: empty name after '='")
    name_from = None
    if name.startswith("@"):
        name_from, name = name[1:].strip(), ""
        if not _DOTTED.match(name_from):
            raise ConfigError(
                f"{kind} entry {text!r}: {name_from!r} after '=@' is not an attribute name"
            )
    return Target(
        kind=kind,
        module=module,
        qualname=qualname,
        name=name or qualname,
        entry=text,
        name_from=name_from,
    )


def parse_entries(kind: str, value: str | Sequence[str]) -> tuple[list[Target], list[ConfigError]]:
    """Parse a comma-separated string or a list of entries; keep going past bad ones."""
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        items = list(value)
    else:
        return [], [
            ConfigError(
                f"{kind} entries must be a string or a list of strings, not {_shown(value)}"
            )
        ]
    targets, errors = [], []
    for item in items:
        if not item.strip():
            continue
        try:
            targets.append(parse_entry(kind, item))
        except ConfigError as exc:
            errors.append(exc)
    return targets, errors


def _parse_bool(source: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{source}: {_shown(value)} is not a boolean (use 1/0, true/false)")


def _shown(value: Any) -> str:
    """``repr(value)``, cut to a length that keeps a problem on one readable line."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def _toml_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array of tables" if value and isinstance(value[0], dict) else "an array"
    return f"{type(value).__name__} {_shown(value)}"


def _read_toml(path: Path, *, table_optional: bool) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not UTF-8 text (byte {exc.start}: {exc.reason}); "
            "TOML files must be UTF-8"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    tool = data.get("tool")
    if tool is not None and not isinstance(tool, dict):
        raise ConfigError(
            f"{path}: 'tool' is {_toml_type(tool)}, not a table, so [tool.agentstat] cannot be read"
        )
    table = tool.get("agentstat") if tool is not None else None
    if table is None:
        return data if table_optional else {}
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.agentstat] is {_toml_type(table)}, not a table")
    return table


def _strict_from_env(environ: Mapping[str, str]) -> bool:
    try:
        return _parse_bool(AGENTSTAT_STRICT, environ.get(AGENTSTAT_STRICT, ""))
    except ConfigError:
        return False


def load_config(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Config:
    """Read every source; never raises (problems are in ``Config.errors``, one line each,
    naming the setting or entry, the value and the reason)."""
    environ = os.environ if environ is None else environ
    try:
        return _load_config(environ, Path.cwd() if cwd is None else cwd)
    except Exception as exc:  # a bug or an input nobody foresaw: still one line, no traceback
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        error = ConfigError(f"cannot read the configuration ({reason}); nothing is instrumented")
        return Config(strict=_strict_from_env(environ), errors=(error,))


def _load_config(environ: Mapping[str, str], cwd: Path) -> Config:
    errors: list[ConfigError] = []
    settings: dict[str, Any] = {}

    sources: list[tuple[Path, bool]] = []
    if (cwd / "pyproject.toml").is_file():
        sources.append((cwd / "pyproject.toml", False))
    if environ.get(AGENTSTAT_CONFIG):
        sources.append((Path(environ[AGENTSTAT_CONFIG]), True))
    for path, table_optional in sources:
        try:
            table = _read_toml(path, table_optional=table_optional)
        except ConfigError as exc:
            errors.append(exc)
            continue
        for key, value in table.items():
            if key in _TOML_KEYS or key == "strict":
                settings[key] = (f"{path}: {key}", value)
            elif key not in _OTHER_KEYS:
                known = ", ".join([*_TOML_KEYS, "strict", *_OTHER_KEYS])
                errors.append(ConfigError(f"{path}: unknown key {key!r} (known: {known})"))

    for key, kind in _TOML_KEYS.items():
        if environ.get(_ENV[kind]) is not None:
            settings[key] = (_ENV[kind], environ[_ENV[kind]])
    if environ.get(AGENTSTAT_STRICT) is not None:
        settings["strict"] = (AGENTSTAT_STRICT, environ[AGENTSTAT_STRICT])

    strict = False
    if "strict" in settings:
        source, value = settings["strict"]
        try:
            strict = _parse_bool(source, value)
        except ConfigError as exc:
            errors.append(exc)
    errors.extend(ConfigError(problem) for problem in limit_problems(environ))
    try:
        duration_buckets(environ, cwd)
    except ConfigError as exc:
        errors.append(exc)
    targets: list[Target] = []
    for key, kind in _TOML_KEYS.items():
        if key in settings:
            source, value = settings[key]
            parsed, problems = parse_entries(kind, value)
            targets.extend(parsed)
            errors.extend(ConfigError(f"{source}: {problem}") for problem in problems)
    return Config(targets=tuple(targets), strict=strict, errors=tuple(errors))


def duration_buckets(
    environ: Mapping[str, str] | None = None, cwd: Path | None = None
) -> tuple[float, ...]:
    """Bucket bounds (seconds) of the duration histograms: ``AGENTSTAT_DURATION_BUCKETS``,
    else ``duration_buckets`` from the TOML sources of :func:`load_config`, else
    :data:`agentstat.semconv.DURATION_BUCKETS`. The instrumentation, ``agentstat rules``
    and ``agentstat check`` all call this, so a threshold among the bounds is counted
    exactly everywhere. Raises :class:`ConfigError` naming the source of a bad value."""
    environ = os.environ if environ is None else environ
    found: tuple[str, Any] | None = None
    in_toml = _toml_setting("duration_buckets", environ, cwd)
    if in_toml is not None:
        found = (f"{in_toml[0]}: duration_buckets", in_toml[1])
    if environ.get(AGENTSTAT_DURATION_BUCKETS, "").strip():
        found = (AGENTSTAT_DURATION_BUCKETS, environ[AGENTSTAT_DURATION_BUCKETS])
    if found is None:
        return DURATION_BUCKETS
    source, value = found
    items = value.split(",") if isinstance(value, str) else value
    try:
        bounds = tuple(float(item) for item in items)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: {value!r} is not a list of numbers") from None
    if not bounds or not all(0 < b < float("inf") for b in bounds):
        raise ConfigError(f"{source}: bounds must be positive, finite seconds, got {value!r}")
    if any(later <= earlier for earlier, later in pairwise(bounds)):
        raise ConfigError(f"{source}: bounds must increase, got {value!r}")
    return bounds


def web_config_file(
    environ: Mapping[str, str] | None = None, cwd: Path | None = None
) -> str | None:
    """Path of the endpoint's web configuration file: ``AGENTSTAT_WEB_CONFIG_FILE``, else
    ``web_config_file`` from the TOML sources of :func:`load_config` (relative to that
    file), else None. Raises :class:`ConfigError` naming a bad source."""
    environ = os.environ if environ is None else environ
    if environ.get(AGENTSTAT_WEB_CONFIG_FILE, "").strip():
        return environ[AGENTSTAT_WEB_CONFIG_FILE].strip()
    in_toml = _toml_setting("web_config_file", environ, cwd)
    if in_toml is None:
        return None
    path, value = in_toml
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{path}: web_config_file must be a file path, not {value!r}")
    return str(path.parent / value)  # an absolute value replaces the directory


def _toml_setting(
    key: str, environ: Mapping[str, str], cwd: Path | None
) -> tuple[Path, Any] | None:
    """(file, value) of ``key`` in the last TOML source of :func:`load_config` that sets
    it, or None. An unreadable file is skipped: :func:`load_config` reports it."""
    cwd = Path.cwd() if cwd is None else cwd
    sources = [(cwd / "pyproject.toml", False)] if (cwd / "pyproject.toml").is_file() else []
    if environ.get(AGENTSTAT_CONFIG):
        sources.append((Path(environ[AGENTSTAT_CONFIG]), True))
    found = None
    for path, table_optional in sources:
        try:
            table = _read_toml(path, table_optional=table_optional)
        except ConfigError:
            continue  # load_config reports an unreadable file, once
        if key in table:
            found = (path, table[key])
    return found


def with_duration_buckets(spec: MetricSpec) -> MetricSpec:
    """``spec`` with the configured duration buckets if it uses the default ones; with a
    bad setting the defaults are kept (recording never fails on it; the instrumentor
    reports the setting at start-up, through :func:`load_config`)."""
    if spec.buckets is not DURATION_BUCKETS:
        return spec
    try:
        bounds = duration_buckets()
    except ConfigError as exc:  # reported (once, strict mode stops) by load_config
        _logger.debug("agentstat: %s; using the default duration buckets", exc)
        return spec
    return spec if bounds == DURATION_BUCKETS else replace(spec, buckets=bounds)
