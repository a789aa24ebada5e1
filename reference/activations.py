"""Element-wise activations: any shape in, the same shape out."""

from __future__ import annotations

import math

import numpy as np

from .layer import Layer
from .validation import all_finite, check_bool, check_choice, check_real

_erf = np.frompyfunc(math.erf, 1, 1)  # numpy has no erf; math.erf is correctly rounded to within an ulp or so


class Pointwise(Layer):
    """An element-wise function. ``forward`` keeps its derivative at ``x`` (not its output, which is the
    caller's and may be changed in place before ``backward``); ``backward`` multiplies ``dout`` by it.

    A function whose derivative is zero outside a region (``ReLU``, ``Hardsigmoid``) sets :attr:`region`: there
    its gradient is 0 whatever ``dout`` is, as PyTorch's backward of these functions selects, while the product
    ``dout * 0`` is NaN for an infinite or NaN ``dout``. So when ``dout`` is not all finite
    (:func:`~reference.validation.all_finite`), the product is 0 outside the region. (A selection every time,
    ``np.where``, measured 9x slower than the product at 64x32x28x28.)
    """

    region = False

    def _value_and_slope(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - interface
        """``(f(x), f'(x))``, each shaped like ``x``."""
        raise NotImplementedError

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._input(x)
        y, self._cache = self._value_and_slope(x)
        self._out_shape = x.shape
        return y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dout = self._upstream(dout)
        if self.region and not all_finite(dout):
            with np.errstate(invalid="ignore"):  # the products outside the region, dropped here
                return np.where(self._cache != 0, dout * self._cache, 0)
        return dout * self._cache


class ReLU(Pointwise):
    """``max(x, 0)``, any shape. The gradient at exactly 0 is 0 (as PyTorch and TensorFlow)."""

    region = True

    def _value_and_slope(self, x):
        return np.maximum(x, 0), x > 0


class LeakyReLU(Pointwise):
    """``x`` where ``x > 0``, ``negative_slope * x`` elsewhere; any shape.

    ``negative_slope`` defaults to 0.01 as ``torch.nn.LeakyReLU`` (Keras' ``LeakyReLU`` defaults to
    0.3: pass it explicitly when porting). The gradient at exactly 0 is ``negative_slope`` (as PyTorch).
    """

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = check_real(negative_slope, "LeakyReLU", "negative_slope")

    def __repr__(self) -> str:
        return f"LeakyReLU(negative_slope={self.negative_slope})"

    def _value_and_slope(self, x):
        slope = np.where(x > 0, x.dtype.type(1), x.dtype.type(self.negative_slope))
        return x * slope, slope


class Sigmoid(Pointwise):
    """``1 / (1 + exp(-x))``, any shape, without overflow for large ``|x|``; ``dx = dout * y * (1 - y)``."""

    def __repr__(self) -> str:
        return "Sigmoid()"

    def _value_and_slope(self, x):
        e = np.exp(-np.abs(x))  # in (0, 1]: never overflows
        y = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
        return y, y * (1 - y)


class Tanh(Pointwise):
    """``tanh(x)``, any shape; ``dx = dout * (1 - y**2)``."""

    def __repr__(self) -> str:
        return "Tanh()"

    def _value_and_slope(self, x):
        y = np.tanh(x)
        return y, 1 - y * y


GELU_APPROXIMATIONS = ("none", "tanh")


class GELU(Pointwise):
    """``GELU(approximate="none")``, as ``torch.nn.GELU``; any shape.

    ``"none"``: ``x * Phi(x) = 0.5 * x * (1 + erf(x / sqrt(2)))``, slope ``Phi(x) + x * phi(x)``;
    ``"tanh"``: ``0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x**3)))`` and its exact derivative.
    Computed in float64 (``erf`` per element) and rounded to ``x``'s dtype. Keras'
    ``keras.activations.gelu`` defaults to ``approximate=True``, i.e. ``"tanh"`` here.
    """

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.approximate = check_choice(approximate, GELU_APPROXIMATIONS, "GELU", "approximate")

    def __repr__(self) -> str:
        return f"GELU(approximate={self.approximate!r})"

    def _value_and_slope(self, x):
        z = x.astype(np.float64)
        if self.approximate == "none":
            cdf = 0.5 * (1.0 + _erf(z * math.sqrt(0.5)).astype(np.float64))
            pdf = np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
            y, slope = z * cdf, cdf + z * pdf
        else:
            beta, kappa = math.sqrt(2 / math.pi), 0.044715
            t = np.tanh(beta * (z + kappa * z * z * z))
            y = 0.5 * z * (1.0 + t)
            slope = 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * beta * (1.0 + 3.0 * kappa * z * z)
        return y.astype(x.dtype, copy=False), slope.astype(x.dtype, copy=False)


class Hardsigmoid(Pointwise):
    """``Hardsigmoid(*, float32_slope=False)``: ``min(max(x + 3, 0), 6) / 6``, as ``torch.nn.Hardsigmoid`` (and
    Keras 3's ``hard_sigmoid``); any shape. The slope is ``1/6`` for ``-3 < x < 3`` and 0 elsewhere, the end
    points included (as both frameworks).

    ``float32_slope=True`` multiplies ``dout`` by ``1/6`` rounded to float32 (0.16666667163...) in every dtype:
    PyTorch's CPU backward does (its constant is ``1.0f / 6.0f``), so its float64 gradient is off by 3e-8
    relative; Keras' (``relu6(x + 3) / 6``) is the exact ``1/6`` of the default.
    """

    def __init__(self, *, float32_slope: bool = False) -> None:
        super().__init__()
        self.float32_slope = check_bool(float32_slope, "Hardsigmoid", "float32_slope")

    def __repr__(self) -> str:
        return "Hardsigmoid(float32_slope=True)" if self.float32_slope else "Hardsigmoid()"

    region = True

    def _value_and_slope(self, x):
        inside = (x > -3) & (x < 3)
        sixth = x.dtype.type(np.float32(1) / np.float32(6)) if self.float32_slope else x.dtype.type(1) / 6
        return np.minimum(np.maximum(x + 3, 0), 6) / 6, inside * sixth
