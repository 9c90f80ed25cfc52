"""Instrumented functions pickle by reference, as the functions they wrap do, so
``ProcessPoolExecutor.submit(agent, ...)`` works with the spawn start method."""

from __future__ import annotations

import copy
import multiprocessing
import pickle
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from agentstat.instrumentation import AgentstatInstrumentor

APP = Path(__file__).parent / "apps" / "pickling"


@pytest.fixture
def targets(meter_provider) -> Iterator:
    sys.path.insert(0, str(APP))
    try:
        import pickle_targets

        AgentstatInstrumentor().instrument(
            meter_provider=meter_provider,
            agents=[
                "pickle_targets:plan",
                "pickle_targets:Planner.run=planner",
                "pickle_targets:invoke",
            ],
        )
        yield pickle_targets
    finally:
        AgentstatInstrumentor().uninstrument()
        sys.path.remove(str(APP))


def test_path_wrapped_function_and_method_pickle_by_reference(targets) -> None:
    """A wrapped module function, a wrapped bound method and a decorated generator
    function round-trip through pickle to the very objects the module holds; a wrapped
    callable object pickles as the bare object would."""
    assert pickle.loads(pickle.dumps(targets.plan)) is targets.plan
    assert pickle.loads(pickle.dumps(targets.stream)) is targets.stream
    planner = targets.Planner()
    assert pickle.loads(pickle.dumps(planner.run))(1) == 2
    assert pickle.loads(pickle.dumps(targets.invoke))(1) == 11  # an object: by value
    assert copy.copy(targets.plan) is targets.plan
    assert copy.deepcopy(targets.stream) is targets.stream


def test_spawned_process_pool_runs_instrumented_functions(targets) -> None:
    """submit() of a path-wrapped function, a decorated generator function (as an
    argument) and a path-wrapped bound method works under spawn."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        assert pool.submit(targets.plan, 21).result(timeout=60) == 42
        assert pool.submit(targets.consume, targets.stream, 3).result(timeout=60) == [0, 1, 2]
        assert pool.submit(targets.Planner().run, 1).result(timeout=60) == 2
    assert targets.plan(1) == 2  # still instrumented here


def test_unpicklable_local_function_fails_as_it_would_unwrapped(meter_provider) -> None:
    """A wrapped function that pickle cannot find by name fails as the plain one does."""
    import agentstat

    def local():
        yield 1

    with pytest.raises((pickle.PicklingError, AttributeError)):
        pickle.dumps(local)
    with pytest.raises((pickle.PicklingError, AttributeError)):
        pickle.dumps(agentstat.agent(local))
