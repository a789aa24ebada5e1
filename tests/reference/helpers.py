"""Shared test helper: a layer's gradients against finite differences."""

from __future__ import annotations

import numpy as np

from reference import gradient_errors, max_rel_error

# Central differences with h=1e-5 in float64: truncation error ~h^2 * |f'''| ~ 1e-10, rounding
# ~eps * |f| / h ~ 1e-10; measured normwise (max |a - n| / max |n|) so cancelling elements do not count.
GRADCHECK_TOL = 1e-8


def assert_gradients_match(layer, x: np.ndarray, rng: np.random.Generator) -> None:
    """``x`` and every parameter of ``layer`` agree with central differences to GRADCHECK_TOL."""
    dout = rng.standard_normal(layer.forward(x).shape)
    errs = gradient_errors(layer, x, dout)
    assert set(errs) == {"x", *layer.params}, f"missing gradients: {errs.keys()} vs params {list(layer.params)}"
    bad = {k: e for k, e in errs.items() if not e <= GRADCHECK_TOL}
    assert not bad, f"{layer!r}: analytic vs numerical gradient max_rel_error {bad} > {GRADCHECK_TOL}"


def assert_impls_agree(build, case, x: np.ndarray, rng: np.random.Generator, params: tuple[str, ...] = ()) -> None:
    """``build(case, "loop")`` and ``build(case, "im2col")`` agree to 1e-12 (normwise) on the output, ``dx``
    and the gradients named in ``params``."""
    loop, fast = build(case, "loop"), build(case, "im2col")
    out = loop.forward(x)
    assert max_rel_error(fast.forward(x), out) < 1e-12
    dout = rng.standard_normal(out.shape)
    assert max_rel_error(fast.backward(dout), loop.backward(dout)) < 1e-12
    for key in params:
        assert max_rel_error(fast.grads[key], loop.grads[key]) < 1e-12, key
