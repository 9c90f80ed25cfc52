"""A user's agents, written with no knowledge of agentstat."""

import asyncio


def plan(task):
    """Plan a task."""
    if task == "fail":
        raise ValueError(task)
    return f"plan:{task}"


async def search(query):
    await asyncio.sleep(0)
    return [query]


class Researcher:
    def run(self, topic):
        return f"{self.__class__.__name__}:{topic}"

    @staticmethod
    def helper(x):
        return x * 2

    @classmethod
    def build(cls, x):
        return cls, x


NOT_CALLABLE = 42
