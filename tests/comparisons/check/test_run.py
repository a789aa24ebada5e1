"""One configuration: records against the reference, exceptions as failures, NotImplementedError as not covered."""

import numpy as np

from comparisons.check import matrix, run, styles
from tests.comparisons.check.fixtures import class_layers


class _Raises(class_layers.ReLU):
    def backward(self, dout):
        return dout[:, :1] * np.ones((7,))  # a broadcasting error


class _Refuses(class_layers.ReLU):
    def forward(self, x):
        raise NotImplementedError("single images only")


def _outcome(cls):
    config = matrix.configurations("ReLU")[0]
    return run.run_config(styles.ClassStyle(cls), "ReLU", config, "float64")


def test_records_per_quantity():
    outcome = _outcome(class_layers.ReLU)
    assert outcome.status == run.PASSED
    assert [(r.framework, r.quantity) for r in outcome.records] == [("reference", "forward"), ("reference", "dx")]
    assert all(r.max_rel_err <= r.tol for r in outcome.records)


def test_an_exception_is_a_failure_with_its_last_line():
    outcome = _outcome(_Raises)
    assert outcome.status == run.FAILED and outcome.message.startswith("ValueError: operands could not be broadcast")
    assert outcome.failed_quantities() == ["error"]


def test_not_implemented_from_a_call_is_not_covered():
    outcome = _outcome(_Refuses)
    assert outcome.status == run.NOT_COVERED and "single images only" in outcome.message


def test_a_wrong_shape_is_named():
    class WrongShape(class_layers.ReLU):
        def backward(self, dout):
            return dout[..., :-1]

    outcome = _outcome(WrongShape)
    assert outcome.status == run.FAILED and outcome.problems == ["dx: shape (2, 3, 5, 3), expected (2, 3, 5, 4)"]


def test_tied_inputs_tie():
    config = next(c for c in matrix.configurations("MaxPool2d") if c.ties)
    r = run.reference_run(config, "float64")
    assert set(np.unique(r.x)) <= {0.0, 1.0}
