"""Agents for the start-up tests: two plain targets and an object whose attributes cannot
be replaced (as a pydantic model instance refuses an attribute that is not a field)."""


def plan(task):
    return task


def search(query):
    return [query]


class Model:
    """Refuses new attributes the way pydantic models do, with a multi-line error."""

    def __setattr__(self, name, value):
        raise ValueError(
            f'1 validation error for Model\n{name}\n  Object has no attribute "{name}"'
        )

    def run(self, task):
        return task


agent = Model()
