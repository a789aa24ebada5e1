"""Shared test helpers: gradient checks of a layer against finite differences."""

from __future__ import annotations

import numpy as np

from reference import max_rel_error, numerical_gradient

# Central differences with h=1e-5 in float64: truncation error ~h^2 * |f'''| ~ 1e-10, rounding
# ~eps * |f| / h ~ 1e-10; measured normwise (max |a - n| / max |n|) so cancelling elements do not count.
GRADCHECK_TOL = 1e-8


def check_layer_gradients(layer, x: np.ndarray, rng: np.random.Generator) -> dict[str, float]:
    """Compare ``layer.backward`` with central differences for ``x`` and every parameter.

    Returns ``{name: normwise relative error}`` for ``"x"`` and each parameter key; all float64.
    """
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    analytic = {"x": dx, **{k: v.copy() for k, v in layer.grads.items()}}
    numeric = {"x": numerical_gradient(lambda: layer.forward(x), x, dout)}
    for key, value in layer.params.items():
        numeric[key] = numerical_gradient(lambda: layer.forward(x), value, dout)
    return {k: max_rel_error(analytic[k], numeric[k]) for k in analytic}


def assert_gradients_match(layer, x: np.ndarray, rng: np.random.Generator) -> None:
    errs = check_layer_gradients(layer, x, rng)
    assert set(errs) == {"x", *layer.params}, f"missing gradients: {errs.keys()} vs params {list(layer.params)}"
    bad = {k: e for k, e in errs.items() if not e <= GRADCHECK_TOL}
    assert not bad, f"{layer!r}: analytic vs numerical gradient max_rel_error {bad} > {GRADCHECK_TOL}"
