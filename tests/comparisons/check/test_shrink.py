"""Greedy shrinking to the smallest configuration that still fails."""

from comparisons.check import matrix, shrink


def test_candidates_are_smaller():
    config = matrix.configurations("Conv2d")[0]
    for candidate in shrink.candidates(config):
        assert shrink.size(candidate) <= shrink.size(config)
        assert candidate.case.input_shape[1] == candidate.kwargs["in_channels"]


def test_shrinks_to_the_smallest_failing():
    config = next(c for c in matrix.configurations("Conv2d") if c.kwargs.get("stride") == 3)

    def fails(c):  # "fails" whenever the stride is above 1 and the input at least 4 wide
        return c.kwargs["stride"] not in (1, (1, 1)) and c.case.input_shape[-1] >= 4

    smallest = shrink.shrink(config, fails)
    assert smallest.kwargs["stride"] == 2 and smallest.case.input_shape[-1] == 4
    assert smallest.kwargs["in_channels"] == 1 and smallest.kwargs["out_channels"] == 1
    assert smallest.kwargs["kernel_size"] == 1 and smallest.kwargs["padding"] == 0


def test_budget_bounds_the_tries():
    calls = []
    shrink.shrink(matrix.configurations("Conv2d")[0], lambda c: calls.append(c) or False, budget=5)
    assert len(calls) == 5
