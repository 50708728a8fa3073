"""Check analytic derivatives against central finite differences, for tinymeta's tests and yours.

``gradcheck(f, inputs)`` compares, for every element of every input, the reverse-mode gradient of
the projection F(x) = <v, f(x)> (v a fixed random vector) with the central difference

    (F(x + eps e_i) - F(x - eps e_i)) / (2 eps),

all in float64. Error of the difference: truncation eps^2/6 |F'''| plus rounding ~1e-16 |F| / eps;
with eps = 1e-6 both are far below the default tolerance atol + rtol |numeric| = 1e-6 + 1e-5 |n|
for quantities of order one.

``gradgradcheck(f, inputs)`` applies the same check to x -> grad <v, f(x)> (the gradient, recorded
with ``create_graph``), which checks every second derivative; ``projected_grad`` composed again
checks third order, and so on.

>>> import tinymeta as tm
>>> from tinymeta.testing import gradcheck, gradgradcheck
>>> x = tm.tensor([0.3, -1.2, 2.0])
>>> gradcheck(tm.tanh, [x]) and gradgradcheck(tm.tanh, [x])
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy

from ._checks import integer, real
from .backend import array_module
from .engine import Tensor, TensorLike, grad, grad_mode, new_leaf, tensor, zeros_for_none

Outputs = Any  # a Tensor or a tuple of Tensors


class GradcheckError(AssertionError):
    """An analytic derivative disagrees with its finite-difference estimate."""


def _evaluate(f: Callable[..., Outputs], inputs: Sequence[Tensor]) -> tuple[Tensor, ...]:
    """f's outputs, computed with recording on whatever the caller's ``no_grad``: the checks
    differentiate f by definition."""
    with grad_mode(True):
        return _as_outputs(f(*inputs))


def _as_outputs(out: Outputs) -> tuple[Tensor, ...]:
    outs = tuple(out) if isinstance(out, (tuple, list)) else (out,)
    for i, o in enumerate(outs):
        if not isinstance(o, Tensor):
            raise TypeError(f"f must return a Tensor or a tuple of Tensors; output {i} is {type(o).__name__}")
    return outs


def _float64_leaves(arrays: Sequence[Any]) -> list[Tensor]:
    return [new_leaf(a) for a in arrays]


def _projection_vectors(outs: Sequence[Tensor], seed: int) -> list[Any]:
    rng = numpy.random.default_rng(seed)
    return [array_module(o.data).asarray(rng.standard_normal(o.shape)) for o in outs]


def _project(outs: Sequence[Tensor], vs: Sequence[Any]) -> float:
    return float(sum((v * o.data).sum() for v, o in zip(vs, outs)))


def numerical_gradient(
    f: Callable[..., Outputs], inputs: Sequence[TensorLike], seed: int = 0, eps: float = 1e-6
) -> list[numpy.ndarray]:
    """Central finite differences of F(x) = <v, f(x)> in float64, one array per input.

    v is the random projection ``gradcheck`` uses for the same ``seed``.
    """
    inputs, eps, seed = _checked_inputs(inputs, eps, seed)
    arrays = [_to_float64(x) for x in inputs]
    vs = _projection_vectors(_evaluate(f, _float64_leaves(arrays)), seed)
    numeric = []
    for k, x in enumerate(arrays):
        g = numpy.zeros(x.shape)
        for idx in numpy.ndindex(x.shape):
            shifted = list(arrays)
            plus = x.copy()
            plus[idx] += eps
            shifted[k] = plus
            f_plus = _project(_evaluate(f, _float64_leaves(shifted)), vs)
            minus = x.copy()
            minus[idx] -= eps
            shifted[k] = minus
            f_minus = _project(_evaluate(f, _float64_leaves(shifted)), vs)
            g[idx] = (f_plus - f_minus) / (2 * eps)
        numeric.append(g)
    return numeric


def _checked_inputs(inputs: Any, eps: float, seed: int) -> tuple[Sequence[TensorLike], float, int]:
    """The inputs (a list or tuple, one per argument of f), eps (finite, > 0) and the seed (an integer >= 0)."""
    if not isinstance(inputs, (list, tuple)):
        raise TypeError(
            f"inputs must be a list of the arguments of f (gradcheck(f, [x]) for one), got {type(inputs).__name__}"
        )
    return inputs, real(eps, "eps", low=0, low_inclusive=False), integer(seed, "seed", 0)


def _to_float64(x: TensorLike) -> Any:
    """A float64 copy of x's data; a plain array goes to the default backend, like tensor(x)."""
    data = x.data if isinstance(x, Tensor) else tensor(x).data
    return data.astype(array_module(data).float64, copy=True)


def gradcheck(
    f: Callable[..., Outputs],
    inputs: Sequence[TensorLike],
    *,
    eps: float = 1e-6,
    atol: float = 1e-6,
    rtol: float = 1e-5,
    seed: int = 0,
) -> bool:
    """Check reverse-mode gradients of ``f`` at ``inputs`` against central differences.

    ``f`` takes one Tensor per input and returns a Tensor or a tuple of Tensors. The inputs are
    copied to float64. Returns True, or raises :class:`GradcheckError` naming the input, the
    element, the analytic and the numeric value.
    """
    inputs, eps, seed = _checked_inputs(inputs, eps, seed)
    atol, rtol = real(atol, "atol", low=0), real(rtol, "rtol", low=0)
    arrays = [_to_float64(x) for x in inputs]
    leaves = _float64_leaves(arrays)
    outs = _evaluate(f, leaves)
    vs = _projection_vectors(outs, seed)
    differentiable = [(o, v) for o, v in zip(outs, vs) if o.requires_grad]
    analytic: Sequence[Tensor | None] = [None] * len(leaves)
    if differentiable:
        analytic = grad(
            [o for o, _ in differentiable], leaves, grad_outputs=[v for _, v in differentiable], allow_unused=True
        )
    numeric = numerical_gradient(f, arrays, seed=seed, eps=eps)
    for k, (a, n) in enumerate(zip(analytic, numeric)):
        a_host = numpy.zeros(n.shape) if a is None else a.numpy()
        if a_host.shape != n.shape:
            raise GradcheckError(f"input {k}: gradient has shape {a_host.shape}, input has shape {n.shape}")
        overflowed = ~numpy.isfinite(n)
        if overflowed.any():  # a tolerance of rtol * inf would pass any analytic value
            idx = tuple(int(i) for i in numpy.argwhere(overflowed)[0])
            raise GradcheckError(
                f"input {k} (shape {n.shape}) at element {idx}: the central difference is {n[idx]} (F overflows "
                f"within eps = {eps:g} of the point), so it checks nothing there: choose a smaller eps or another point"
            )
        bad = ~(numpy.abs(a_host - n) <= atol + rtol * numpy.abs(n))
        if bad.any():
            idx = tuple(int(i) for i in numpy.argwhere(bad)[0])
            diff = abs(a_host[idx] - n[idx])
            raise GradcheckError(
                f"gradient mismatch for input {k} (shape {n.shape}) at element {idx}: "
                f"analytic {a_host[idx]:.10g}, numeric {n[idx]:.10g}, |difference| {diff:.3g} > "
                f"tolerance {atol + rtol * abs(n[idx]):.3g} ({int(bad.sum())} of {bad.size} elements differ)"
            )
    return True


def projected_grad(f: Callable[..., Outputs], seed: int = 1) -> Callable[..., tuple[Tensor, ...]]:
    """x -> grad_x <v, f(x)> with a fixed random v, recorded so it can be differentiated again.

    ``gradcheck(projected_grad(f), inputs)`` checks f's second derivatives;
    ``gradcheck(projected_grad(projected_grad(f)), inputs)`` its third.
    """
    vectors: list[Any] = []

    def gradient(*xs: Tensor) -> tuple[Tensor, ...]:
        outs = _evaluate(f, xs)
        if not vectors:
            vectors.extend(_projection_vectors(outs, seed))
        pairs = [(o, v) for o, v in zip(outs, vectors) if o.requires_grad]
        if not pairs:
            return zeros_for_none([None] * len(xs), xs)
        grads = grad(
            [o for o, _ in pairs], xs, grad_outputs=[v for _, v in pairs], create_graph=True, allow_unused=True
        )
        return zeros_for_none(grads, xs)

    return gradient


def gradgradcheck(f: Callable[..., Outputs], inputs: Sequence[TensorLike], **kwargs: Any) -> bool:
    """Check second derivatives of ``f``: gradcheck of x -> grad_x <v, f(x)>."""
    return gradcheck(projected_grad(f), inputs, **kwargs)
