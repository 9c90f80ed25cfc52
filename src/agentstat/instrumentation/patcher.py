"""Wraps configured targets by path, whenever their module is imported.

A target's module may be imported before instrumentation starts or long after (agents
are often imported lazily); a wrapt post-import hook covers both. Problems are
reported per entry, in one log line naming the entry and the reason, and the other
targets are still wrapped; in strict mode the first problem raises instead.

Originals are restored from the owner's ``__dict__`` as it was before patching, not
with ``opentelemetry.instrumentation.utils.unwrap``: that helper re-reads the attribute
through the descriptor protocol and would turn a wrapped ``staticmethod`` or
``classmethod`` into a plain function.
"""

from __future__ import annotations

import inspect
import logging
import sys
import threading
from collections.abc import Callable
from types import FunctionType, ModuleType
from typing import Any

import wrapt

from agentstat._metrics.caps import shorten
from agentstat.errors import TargetError
from agentstat.instrumentation import _wrappers, captured
from agentstat.instrumentation._modules import missing_module
from agentstat.instrumentation.config import Target
from agentstat.semconv import OTHER

_logger = logging.getLogger("agentstat")
_ABSENT = object()
_MAIN_REASON = (
    "__main__ targets cannot work: a script runs after instrumentation starts and is never "
    "imported, so there is nothing to wrap yet and no import to hook; put the function in a "
    "module the script imports, or decorate it with @agentstat.agent / @agentstat.tool"
)


def _underlying(raw: Any) -> Any:
    """The function behind a staticmethod/classmethod/wrapper, for shape checks."""
    if isinstance(raw, staticmethod | classmethod):
        return raw.__func__
    return raw


def _one_line(exc: BaseException) -> str:
    """``Type: message`` on one line (pydantic's errors span several)."""
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= 160 else f"{text[:157]}..."


def _describe(owner: Any) -> str:
    if isinstance(owner, ModuleType):
        return f"module {owner.__name__!r}"
    if isinstance(owner, type):
        return f"class {owner.__qualname__!r}"
    return f"this {type(owner).__qualname__} object"


def _recorder_of(func: Any) -> Any:
    """The recorder of a function agentstat's decorator made, if it is one."""
    try:
        return func.__dict__.get(_wrappers.MARKER) if isinstance(func, FunctionType) else None
    except Exception:
        return None


def _named_otherwise(recorder: Any, target: Target) -> bool:
    """Whether an existing recorder records ``target`` under another kind or name."""
    if recorder.kind != target.kind:
        return True
    return recorder.name not in (target.name, shorten(target.name), OTHER)


class Patcher:
    """Applies targets and remembers how to undo them."""

    def __init__(
        self, strict: bool, class_patchers: dict[str, Callable[[type, str], list]]
    ) -> None:
        self.strict = strict
        self.active = True
        self._class_patchers = class_patchers
        self._lock = threading.RLock()
        self._restore: list[tuple[Any, str, Any]] = []  # owner, attribute, raw original
        self._unwrap: list[tuple[Any, str]] = []  # pairs patched by class patchers
        self._listed: dict[str, Target] = {}  # path -> the first entry naming it

    # -- reporting -----------------------------------------------------------------

    def problem(self, target: Target | None, reason: str) -> None:
        """Report one problem: log it, or raise it in strict mode. ``target`` is None for
        configuration errors, whose message already names the entry or file."""
        if target is None:
            message = f"agentstat: {reason}"
        else:
            where = f"{target.kind} entry {target.entry!r}"
            action = "cannot instrument" if self.strict else "skipping"
            message = f"agentstat: {action} {where}: {reason}"
        if self.strict:
            raise TargetError(message)
        _logger.error("%s", message)

    # -- applying ------------------------------------------------------------------

    def add(self, target: Target) -> None:
        """Wrap ``target`` now if its module is loaded, else when it is imported."""
        if target.module == "__main__":
            self.problem(target, _MAIN_REASON)
            return
        first = self._listed.setdefault(target.path, target)
        if first is not target:
            if (first.kind, first.name) != (target.kind, target.name):
                self.problem(
                    target,
                    f"{target.path} is already listed as {first.kind} {first.name!r} "
                    f"(entry {first.entry!r}); this entry is ignored",
                )
            return  # the same target twice: nothing to add
        module = sys.modules.get(target.module)
        if module is not None:
            self._apply_safely(module, target)
            return
        missing = missing_module(target.module)
        if missing is not None:
            self.problem(target, missing)
            return
        wrapt.register_post_import_hook(lambda mod: self._on_import(mod, target), target.module)

    def _on_import(self, module: ModuleType, target: Target) -> None:
        # An import hook must never break the user's import: one line, unless strict
        # mode asks for TargetError from this import.
        self._apply_safely(module, target)

    def _apply_safely(self, module: ModuleType, target: Target) -> None:
        try:
            self._apply(module, target)
        except TargetError:
            raise
        except Exception as exc:
            self.problem(target, f"cannot instrument it: {_one_line(exc)}")

    def _apply(self, module: ModuleType, target: Target) -> None:
        if not self.active:
            return
        owner: Any = module
        parts = target.qualname.split(".")
        for index, part in enumerate(parts):
            if not hasattr(owner, part):
                where = ".".join([target.module, *parts[:index]])
                self.problem(target, f"{where} has no attribute {part!r}")
                return
            if index < len(parts) - 1:
                owner = getattr(owner, part)
        attribute = parts[-1]
        with self._lock:
            if target.kind in self._class_patchers:
                self._patch_class(owner, attribute, target)
            else:
                captured.warn_if_held(owner, attribute, target.kind, target.entry, target.path)
                self._patch_callable(owner, attribute, target)

    def _patch_callable(self, owner: Any, attribute: str, target: Target) -> None:
        if isinstance(owner, type | ModuleType):
            raw = inspect.getattr_static(owner, attribute)
        else:  # an object's method: wrap the bound method on the object itself
            raw = getattr(owner, attribute)
        if _wrappers.is_wrapped(raw) or _wrappers.is_wrapped(_underlying(raw)):
            recorder = _recorder_of(_underlying(raw))
            if recorder is not None and _named_otherwise(recorder, target):
                self.problem(
                    target,
                    f"{target.path} is already recorded as {recorder.kind} "
                    f"{recorder.name!r} (by a decorator); this entry is ignored",
                )
                return
            _logger.debug(
                "agentstat: %s is already recorded; %r adds nothing", target.path, target.entry
            )
            return
        func = _underlying(raw)
        if isinstance(func, type) or not callable(func):
            made_by = type(func).__module__.partition(".")[0]
            hint = (
                ""
                if made_by in ("builtins", target.module.partition(".")[0])
                else (
                    f" (a {made_by} object, e.g. made by a framework decorator: name the method "
                    "that runs it, or the function before decorating)"
                )
            )
            self.problem(
                target, f"{target.path} is a {type(func).__name__}, not a function or method{hint}"
            )
            return
        no_instance = isinstance(raw, staticmethod) or (
            isinstance(owner, ModuleType) and isinstance(func, FunctionType)
        )
        if target.name_from and no_instance:
            self.problem(
                target, f"=@{target.name_from} reads the instance, but {target.path} has none"
            )
            return
        try:
            names = recorder = None
            if target.name_from:  # the fallback name is admitted under the cap when used
                names = _wrappers.InstanceNames(target.kind, target.name_from, target.name)
            else:
                recorder = _wrappers.Recorder(target.kind, target.name)
        except ValueError as exc:
            self.problem(target, str(exc))
            return
        before = owner.__dict__.get(attribute, _ABSENT) if hasattr(owner, "__dict__") else _ABSENT
        replacement = None
        if recorder is not None and isinstance(owner, ModuleType) and type(raw) is FunctionType:
            # A module function gets the decorator's closure (a wrapt proxy costs ~0.6 µs
            # more per call); methods and callable objects keep wrapt's binding.
            replacement = _wrappers.closure_for(raw, recorder, by_path=True)
        if replacement is None:
            wrapper = _wrappers.wrapt_wrapper(recorder, func, names)
            replacement = _wrappers.AgentstatFunctionWrapper(raw, wrapper)
        try:
            setattr(owner, attribute, replacement)
        except Exception as exc:  # a pydantic model instance, a frozen dataclass, __slots__
            hint = ""
            if not isinstance(owner, type | ModuleType):
                cls = type(owner).__qualname__
                hint = (
                    "; name the class method instead and take the name from the instance: "
                    f"{target.module}:{cls}.{attribute}=@name"
                )
            self.problem(
                target,
                f"cannot replace {attribute!r} on {_describe(owner)} ({_one_line(exc)}){hint}",
            )
            return
        self._restore.append((owner, attribute, before))
        _logger.debug("agentstat: instrumented %s %s as %r", target.kind, target.path, target.name)

    def _patch_class(self, owner: Any, attribute: str, target: Target) -> None:
        cls = getattr(owner, attribute)
        if not isinstance(cls, type):
            self.problem(target, f"{target.path} is a {type(cls).__name__}, not a class")
            return
        try:
            pairs = self._class_patchers[target.kind](cls, target.name)
        except TargetError as exc:
            self.problem(target, str(exc))
            return
        self._unwrap.extend(pairs)

    # -- undoing -------------------------------------------------------------------

    def undo(self) -> None:
        from opentelemetry.instrumentation.utils import unwrap

        with self._lock:
            self.active = False
            for owner, attribute, before in reversed(self._restore):
                if before is _ABSENT:
                    if attribute in getattr(owner, "__dict__", {}):
                        delattr(owner, attribute)
                else:
                    setattr(owner, attribute, before)
            for owner, attribute in reversed(self._unwrap):
                unwrap(owner, attribute)
            self._restore.clear()
            self._unwrap.clear()
