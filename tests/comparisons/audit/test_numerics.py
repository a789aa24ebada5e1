"""Numerics probes (audit/numerics.py): ReLU's gradient at 0, float dtypes, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from .helpers import check, ev, keras_only, torch_only


@pytest.mark.parametrize("side", [pytest.param("torch", marks=torch_only), pytest.param("keras", marks=keras_only),
                                  "reference"])
def test_relu_grad_at_zero(side):
    pid = "relu-grad-at-zero"
    expected = (np.array(ev(pid, side)["x"]) > 0).astype(float).tolist()
    check(pid, side, "gradient", ev(pid, side)["grad"], expected, "d relu/dx = 1 if x > 0 else 0 (0 at 0)")


@pytest.mark.torch
@pytest.mark.keras
def test_float_dtypes():
    import torch

    pid, t, k = "float-dtypes", ev("float-dtypes", "torch"), ev("float-dtypes", "keras")
    default = str(torch.get_default_dtype()).removeprefix("torch.")
    check(pid, "torch", "parameter dtype", t["parameter_dtype"], default, "torch.get_default_dtype()")
    check(pid, "torch", "from_numpy(float64)", t["tensor_from_float64_numpy"], "float64", "keeps the numpy dtype")
    assert t["dense_on_float64_input"].startswith("RuntimeError"), f"{pid} [torch]: {t['dense_on_float64_input']}"
    check(pid, "keras", "parameter dtype", k["parameter_dtype"], k["floatx"], "keras.config.floatx()")
    check(pid, "keras", "float64 batch through Dense", k["dense_on_float64_input"], k["floatx"], "cast to floatx")
    check(pid, "reference", "parameter dtype", ev(pid, "reference")["parameter_dtype"], "float64", "float64 default")


@pytest.mark.parametrize("side", [pytest.param("torch", marks=torch_only), pytest.param("keras", marks=keras_only),
                                  "reference"])
def test_determinism(side):
    pid = "determinism"
    for key in ("forward_spread", "dx_spread", "seeded_init_spread"):
        check(pid, side, key, ev(pid, side)[key], 0.0, "bitwise repeatable on CPU")
