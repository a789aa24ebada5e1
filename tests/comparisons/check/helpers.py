"""Target strings of the fixtures, shared by the check's tests."""

F = "tests.comparisons.check.fixtures."
ATTRS = {"params": {"weight": "W", "bias": "b"}, "grads": {"weight": "dW", "bias": "db"}}
REF_ONLY = ("reference",)


def functions(forward: str, backward: str, module: str = "cs231n_layers") -> str:
    return f"{F}{module}:{forward},{F}{module}:{backward}"
