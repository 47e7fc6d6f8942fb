"""Functions the tuple tests send (loaded by the test's worker as a module, Python:Modules): what they receive and return."""


def echo(value):
    return value


def kinds(*args, **kwargs):
    """The types the function received, nested: tuples must arrive as tuples, lists as lists."""
    def kind(v):
        if isinstance(v, (list, tuple)):
            return [type(v).__name__, [kind(i) for i in v]]
        if isinstance(v, dict):
            return ["dict", {k: kind(i) for k, i in v.items()}]
        return type(v).__name__
    return {"args": kind(args[0]) if len(args) == 1 else [kind(a) for a in args], "kwargs": {k: kind(v) for k, v in kwargs.items()}}


def pair(x):
    return (x, x * x)


def nested():
    return {"point": (1, 2), "path": [(0, 0), (1, (2, 3))], "a/b~c": (4,), "plain": [5, 6]}
