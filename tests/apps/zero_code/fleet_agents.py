"""Agents of the zero-code test app, written with no knowledge of agentstat."""

import time


def plan(task):
    if task.startswith("bad"):
        raise ValueError(task)
    if task.startswith("key"):
        raise KeyError(task)
    return task


class Researcher:
    def run(self, seconds):
        time.sleep(seconds)
        return seconds


def search(query):
    return [query]
