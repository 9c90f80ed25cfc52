"""The user's agents, built with fakefw: tools captured at definition time."""

import time

import fakefw


@fakefw.tool
def search(query: str) -> str:
    time.sleep(0.02)
    return query


def summarize(text: str) -> str:
    return text[:10]


planner = fakefw.Agent("planner", tools=[search])
writer = fakefw.Agent("writer", tools=[summarize])
crew = fakefw.Crew("newsroom", [planner, writer])
