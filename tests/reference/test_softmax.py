"""Softmax: sums to 1 along dim of a batch (a single image is a batch of one), gradients, bad arguments."""

from __future__ import annotations

import numpy as np
import pytest

from reference import Softmax, log_softmax, max_rel_error
from tests.reference.helpers import assert_gradients_match, assert_refused_by_name, is_int


@pytest.mark.parametrize("shape, dim", [((2, 3, 4, 5), 1), ((2, 3, 4, 5), -1), ((2, 3, 4, 5), 0), ((6, 5), 1),
                                        ((3, 4, 5), 1), ((3, 4, 5), -1), ((3, 4, 5), 0)])
def test_gradients(shape, dim):
    rng = np.random.default_rng(0)
    assert_gradients_match(Softmax(dim), rng.standard_normal(shape), rng)


def test_dim_counts_the_batch_axes():
    rng = np.random.default_rng(1)
    image = 50 * rng.standard_normal((3, 4, 5))
    out = Softmax(1).forward(image)
    assert max_rel_error(out, np.exp(log_softmax(image, axis=0))) < 1e-14
    assert max_rel_error(Softmax(1).forward(image[None])[0], out) == 0
    np.testing.assert_array_equal(Softmax(0).forward(image), np.ones_like(image))


def test_errors():
    with pytest.raises(ValueError, match="dim=2 is out of range"):
        Softmax(2).forward(np.ones((3, 4)))
    with pytest.raises(ValueError, match="x must have 2 or 3 or 4 dims"):
        Softmax().forward(np.ones(4))
    assert_refused_by_name(Softmax, {}, "dim", lambda v: is_int(-4)(v) and v <= 3)
