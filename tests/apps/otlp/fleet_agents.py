"""One agent for the OTLP export test app."""


def plan(i):
    if i < 0:
        raise ValueError(i)
    return i
