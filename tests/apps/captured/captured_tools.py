"""Tools captured before agentstat wraps them, in the ways frameworks capture them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Registry:
    """Stands in for a framework object that keeps the functions it was given."""

    def __init__(self, *functions: Callable[..., Any]) -> None:
        self.functions = list(functions)


def in_registry(x: int) -> int:
    return x


def in_closure(x: int) -> int:
    return x


def free(x: int) -> int:
    return x


class Agent:
    def __init__(self, name: str) -> None:
        self.name = name

    def run(self) -> str:
        return self.name


REGISTRY = Registry(in_registry)


def _make_caller() -> Callable[[int], int]:
    target = in_closure

    def call(x: int) -> int:
        return target(x)

    return call


CALLER = _make_caller()


class Model:
    """Refuses new attributes, as a pydantic model does."""

    def __setattr__(self, name: str, value: Any) -> None:
        raise ValueError(f'"Model" object has no field "{name}"')

    def run(self) -> str:
        return "ran"


model = Model()
