"""clip_grad_norm and clip_grad_value: in place, PyTorch's formulas, Keras' per-array form, bad arguments."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reference import clip_grad_norm, clip_grad_value
from tests.reference.helpers import assert_refused_by_name, is_bool, is_real


def grads():
    return {"a": np.array([3.0, 4.0]), "b": np.array([[12.0]])}  # norms 5 and 12, total 13


def test_global_norm_clips_every_array_by_one_factor():
    g = grads()
    arrays = dict(g)
    assert clip_grad_norm(g, 6.5) == 13.0
    assert g["a"] is arrays["a"]  # in place
    np.testing.assert_allclose(g["a"], [1.5, 2.0], rtol=1e-6)
    np.testing.assert_allclose(g["b"], [[6.0]], rtol=1e-6)


def test_below_the_limit_nothing_changes_and_inf_norm():
    g = grads()
    assert clip_grad_norm(g, 100.0) == 13.0
    np.testing.assert_array_equal(g["a"], [3.0, 4.0])
    assert clip_grad_norm(grads(), 1.0, norm_type=math.inf) == 12.0
    assert math.isclose(clip_grad_norm(grads(), 1.0, norm_type=1), 19.0)


def test_per_array_is_keras_clipnorm():
    g = grads()
    clip_grad_norm(g, 6.0, per_array=True, norm_eps=0.0)
    np.testing.assert_allclose(g["a"], [3.0, 4.0])
    np.testing.assert_allclose(g["b"], [[6.0]])


def test_clip_value():
    g = grads()
    clip_grad_value(g, 3.5)
    np.testing.assert_array_equal(g["a"], [3.0, 3.5])
    np.testing.assert_array_equal(g["b"], [[3.5]])


def test_bad_arguments():
    with pytest.raises(TypeError, match="grads"):
        clip_grad_norm([np.ones(2)], 1.0)
    with pytest.raises(ValueError, match=r"grads\['a'\] must be a writeable"):
        frozen = np.ones(2)
        frozen.flags.writeable = False
        clip_grad_value({"a": frozen}, 1.0)
    with pytest.raises(TypeError, match=r"grads\['a'\]"):
        clip_grad_norm({"a": [1.0]}, 1.0)
    assert_refused_by_name(lambda **kw: clip_grad_norm(grads(), **kw), {"max_norm": 1.0}, "max_norm", is_real(0.0))
    assert_refused_by_name(lambda **kw: clip_grad_norm(grads(), **kw), {"max_norm": 1.0}, "norm_type",
                           lambda v: is_real(0.0, strict=True)(v) or v == math.inf)
    assert_refused_by_name(lambda **kw: clip_grad_norm(grads(), **kw), {"max_norm": 1.0}, "per_array", is_bool)
    assert_refused_by_name(lambda **kw: clip_grad_norm(grads(), **kw), {"max_norm": 1.0}, "norm_eps", is_real(0.0))
    assert_refused_by_name(lambda **kw: clip_grad_value(grads(), **kw), {}, "clip_value", is_real(0.0))
