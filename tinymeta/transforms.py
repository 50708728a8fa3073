"""Function transforms named as in JAX: ``vjp``, ``jvp``, ``hvp``, ``jacobian``, ``hessian``.

Each is a few lines on top of the one primitive, reverse-mode :func:`tinymeta.grad`:

- ``vjp``: v^T J, one reverse sweep.
- ``jvp``: J t by the double-vjp trick. g(u) = J^T u is linear in u, so its own vjp with
  cotangent t is (J^T)^T t = J t: two reverse sweeps, no forward mode needed.
- ``hvp``: H v = d/dx <grad f(x), v> (Pearlmutter 1994): reverse over reverse, a small constant
  times the cost of one gradient, O(n) memory, and the Hessian is never formed.
- ``jacobian`` / ``hessian``: one vjp per output element; for small problems and tests.

**They compose, as JAX's do.** A transform differentiates ``f`` with respect to its own copy of
each primal. When the primals, the tangents (or cotangents) or the tensors ``f`` closes over
require grad, the results carry the graph back to them, so they can be differentiated or
transformed again: ``jacobian(lambda z: jacobian(f, z), x)`` is the Hessian, and
``grad(sum(hvp(f, x, v)[1]), x)`` is the third derivative contracted with v and a vector of ones.
Otherwise (and under ``no_grad``) the results are constants and no graph is kept. Inside, ``f`` is
always evaluated with recording on, whatever the caller's ``no_grad``: a transform computes
derivatives by definition.

**Several inputs and outputs.** ``primals`` given as a tuple (or list) means ``f`` takes one
argument per element, and per-input results come as a tuple (JAX's ``argnums``); anything else
(a Tensor, an array, a number) is one primal. ``f`` returns a Tensor, or, for ``vjp``, ``jvp`` and
``jacobian``, a tuple of Tensors; ``hvp`` and ``hessian`` need one scalar Tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from . import ops
from .backend import array_module
from .engine import (
    Tensor,
    TensorLike,
    depends_on_leaves_other_than,
    fresh_gradients,
    grad,
    grad_mode,
    is_grad_enabled,
    new_leaf,
    seed_gradients,
    tensor,
    wrap_array,
    zeros_for_none,
)


def _as_primals(primals: Any) -> tuple[tuple[Any, ...], bool]:
    """(the primals as a tuple, whether several were given: a tuple or list means one per argument)."""
    if isinstance(primals, (list, tuple)):
        if not primals:
            raise ValueError("primals is empty: give at least one")
        return tuple(primals), True
    return (primals,), False


def _variables(primals: Sequence[TensorLike]) -> tuple[tuple[Tensor, ...], set[int]]:
    """f's own copy of each primal, and the ids of those that are the transform's internal leaves.

    A primal that requires grad (while recording) gets a differentiable copy, so that results
    differentiate back to it; any other primal becomes a fresh leaf, internal to the transform.
    """
    variables, inside = [], set()
    for i, p in enumerate(primals):
        t = p if isinstance(p, Tensor) else tensor(p)
        if t.dtype.kind != "f":
            raise TypeError(f"primals[{i}] must be floating point, got dtype {t.dtype}")
        if t.requires_grad and is_grad_enabled():
            z = ops.astype(t, t.dtype)  # a copy whose gradient flows back to t
        else:
            z = new_leaf(t.data)
            inside.add(id(z))
        variables.append(z)
    return tuple(variables), inside


def _call(
    f: Callable[..., Any], variables: Sequence[Tensor], scalar: str | None = None
) -> tuple[tuple[Tensor, ...], bool]:
    """(f's outputs as a tuple, whether f returned a single Tensor); ``scalar`` names a transform that
    needs one scalar output."""
    with grad_mode(True):
        out = f(*variables)
    if isinstance(out, Tensor):
        if scalar and out.size != 1:
            raise ValueError(f"{scalar} needs a scalar function, but f returned shape {out.shape}")
        outs, single = (out,), True
    elif scalar:
        raise TypeError(f"{scalar} needs f to return one scalar Tensor, got {_describe(out)}")
    elif not isinstance(out, (tuple, list)) or not out or not all(isinstance(o, Tensor) for o in out):
        raise TypeError(
            f"f must return a Tensor or a tuple of Tensors, got {_describe(out)}; build its result from tinymeta "
            "ops on its arguments (not .item(), float() or NumPy)"
        )
    else:
        outs, single = tuple(out), False
    for o in outs:
        if o.dtype.kind == "c":
            raise TypeError(f"f returned a complex tensor ({o.dtype}): tinymeta differentiates real functions only")
    return outs, single


def _describe(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of ({', '.join(type(v).__name__ for v in value)})"
    return type(value).__name__


def _tangents(tangents: Any, variables: Sequence[Tensor], several: bool) -> list[Tensor]:
    """The tangents, one per primal, in the primal's dtype and shape (they may require grad)."""
    if not several:
        return seed_gradients(variables, (tangents,), what="tangents", of="the primal")
    if not isinstance(tangents, (list, tuple)):
        raise TypeError(f"several primals need a tuple of tangents, one per primal; got {type(tangents).__name__}")
    return seed_gradients(variables, tangents, what="tangents", of="primals")


def _result(per_input: Sequence[Any], several: bool) -> Any:
    return tuple(per_input) if several else per_input[0]


def _values(outs: Sequence[Tensor], keep: bool, variables: Sequence[Tensor]) -> tuple[Tensor, ...]:
    """f's outputs as returned: with their graph when ``keep``, else constants that never share memory
    with the caller's primals (f may return a primal itself, or a view of it)."""
    if keep:
        return tuple(outs)
    return tuple(fresh_gradients([o.detach() for o in outs], variables))


def vjp(f: Callable[..., Any], *primals: TensorLike) -> tuple[Any, Callable[[Any], tuple[Tensor, ...]]]:
    """(f(*primals), vjp_fn) where vjp_fn(v) = v^T J: a tuple with one gradient per primal.

    For an f returning a tuple, vjp_fn takes a tuple of cotangents, one per output.

    >>> import tinymeta as tm
    >>> y, vjp_fn = tm.vjp(lambda x: x * x, tm.tensor([1.0, 2.0]))
    >>> vjp_fn(tm.tensor([1.0, 1.0]))[0].numpy()
    array([2., 4.])
    """
    if not primals:
        raise ValueError("vjp needs at least one primal: vjp(f, x) or vjp(f, x, y, ...)")
    for p in primals:
        if isinstance(p, tuple) and any(isinstance(q, Tensor) or hasattr(q, "shape") for q in p):
            raise TypeError("vjp takes the primals as separate arguments, vjp(f, a, b), not a tuple vjp(f, (a, b))")
    recording = is_grad_enabled()  # a vjp_fn made under no_grad returns constants wherever it is called
    variables, inside = _variables(primals)
    outs, single = _call(f, variables)

    def vjp_fn(cotangent: Any) -> tuple[Tensor, ...]:
        if single:
            cotangents = (cotangent,)
        elif not isinstance(cotangent, (tuple, list)) or len(cotangent) != len(outs):
            raise ValueError(f"f returned {len(outs)} outputs: vjp_fn needs a tuple of {len(outs)} cotangents")
        else:
            cotangents = tuple(cotangent)
        seeds = seed_gradients(outs, cotangents, what="cotangent", of="f's output" if single else "f's outputs")
        record = recording and is_grad_enabled() and depends_on_leaves_other_than([*outs, *seeds], inside)
        pairs = [(o, s) for o, s in zip(outs, seeds) if o.requires_grad]
        grads: Sequence[Tensor | None] = [None] * len(variables)
        if pairs:
            grads = grad(
                [o for o, _ in pairs], variables, [s for _, s in pairs], create_graph=record, allow_unused=True
            )
        return zeros_for_none(grads, variables)

    values = _values(outs, recording and depends_on_leaves_other_than(outs, inside), variables)
    return (values[0] if single else values), vjp_fn


def jvp(f: Callable[..., Any], primals: Any, tangents: Any) -> tuple[Any, Any]:
    """(f(primals), J t): the directional derivative of f at ``primals`` along ``tangents``.

    ``primals`` and ``tangents`` are single tensors or tuples of matching shapes; the result has
    the structure of f's output.

    >>> import tinymeta as tm
    >>> y, jt = tm.jvp(tm.sin, tm.tensor([0.0, 1.0]), tm.tensor([1.0, 1.0]))
    >>> jt.numpy().round(4)                           # cos(x) * t
    array([1.    , 0.5403])
    """
    primals, several = _as_primals(primals)
    variables, inside = _variables(primals)
    tangents = _tangents(tangents, variables, several)
    outs, single = _call(f, variables)
    keep = is_grad_enabled() and depends_on_leaves_other_than(outs, inside)
    record = keep or (is_grad_enabled() and depends_on_leaves_other_than(tangents, inside))
    products: list[Tensor | None] = [None] * len(outs)
    dependent = [i for i, o in enumerate(outs) if o.requires_grad]
    if dependent:
        us = [new_leaf(array_module(outs[i].data).zeros_like(outs[i].data)) for i in dependent]
        transposed = grad([outs[i] for i in dependent], variables, us, create_graph=True, allow_unused=True)  # J^T u
        pairs = [(g, t) for g, t in zip(transposed, tangents) if g is not None and g.requires_grad]
        if pairs:
            jts = grad([g for g, _ in pairs], us, [t for _, t in pairs], create_graph=record, allow_unused=True)
            for i, jt in zip(dependent, jts):
                products[i] = jt
    products = list(zeros_for_none(products, outs))
    outs = _values(outs, keep, variables)
    return (outs[0], products[0]) if single else (outs, tuple(products))


def hvp(f: Callable[..., Tensor], primals: Any, tangents: Any) -> tuple[Tensor, Any]:
    """(f(primals), H v) for a scalar f, without forming the Hessian H.

    H v = d/dx <grad f(x), v>: differentiate the gradient (recorded with ``create_graph``) once
    more, with v as the upstream gradient. With several primals (a tuple), H is the Hessian with
    respect to all of them jointly and the result is a tuple, one block per primal.

    >>> import tinymeta as tm
    >>> f = lambda x: tm.sum(x ** 3)                  # H = diag(6 x)
    >>> y, hv = tm.hvp(f, tm.tensor([1.0, 2.0]), tm.tensor([1.0, 1.0]))
    >>> hv.numpy()
    array([ 6., 12.])
    """
    primals, several = _as_primals(primals)
    variables, inside = _variables(primals)
    tangents = _tangents(tangents, variables, several)
    (y,), _ = _call(f, variables, scalar="hvp")
    keep = is_grad_enabled() and depends_on_leaves_other_than([y], inside)
    record = keep or (is_grad_enabled() and depends_on_leaves_other_than(tangents, inside))
    products: Sequence[Tensor | None] = [None] * len(variables)
    if y.requires_grad:
        gradients = grad(y, variables, create_graph=True, allow_unused=True)
        pairs = [(g, v) for g, v in zip(gradients, tangents) if g is not None and g.requires_grad]
        if pairs:
            products = grad(
                [g for g, _ in pairs], variables, [v for _, v in pairs], create_graph=record, allow_unused=True
            )
    return _values((y,), keep, variables)[0], _result(zeros_for_none(products, variables), several)


def jacobian(f: Callable[..., Any], x: Any) -> Any:
    """The Jacobian dy/dx of y = f(x), of shape y.shape + x.shape (one vjp per output element).

    With several inputs (a tuple) the result is a tuple of blocks, one per input; with several
    outputs, a tuple over the outputs (of tuples over the inputs), as JAX's ``jacobian``.

    >>> import tinymeta as tm
    >>> tm.jacobian(lambda a, b: a * b, (tm.tensor(2.0), tm.tensor(3.0)))
    (tensor(3., dtype=float64), tensor(2., dtype=float64))
    """
    primals, several = _as_primals(x)
    variables, inside = _variables(primals)
    outs, single = _call(f, variables)
    record = is_grad_enabled() and depends_on_leaves_other_than(outs, inside)
    blocks = []
    for y in outs:
        rows: list[list[Tensor]] = [[] for _ in variables]
        if y.requires_grad:
            xp = array_module(y.data)
            for k in range(y.size):
                basis = xp.zeros(y.size, dtype=y.dtype)
                basis[k] = 1
                gs = grad(y, variables, basis.reshape(y.shape), create_graph=record, allow_unused=True)
                for row, g in zip(rows, zeros_for_none(gs, variables)):
                    row.append(g)
        per_input = []
        for row, z in zip(rows, variables):
            if row:
                per_input.append(ops.reshape(ops.stack(row), y.shape + z.shape))
            else:  # the output does not depend on x (or is empty)
                per_input.append(wrap_array(array_module(z.data).zeros(y.shape + z.shape, dtype=z.dtype)))
        blocks.append(_result(per_input, several))
    return blocks[0] if single else tuple(blocks)


def hessian(f: Callable[..., Tensor], x: Any) -> Any:
    """The Hessian of a scalar f at x, shape x.shape + x.shape: the Jacobian of the gradient.

    With several inputs (a tuple) the result is the tuple of blocks ((H_00, H_01, ...), ...), block
    (i, j) of shape x_i.shape + x_j.shape, as JAX's ``hessian``.

    >>> import tinymeta as tm
    >>> tm.hessian(lambda z: tm.sum(z ** 3), tm.tensor([1.0, 2.0])).numpy()
    array([[ 6.,  0.],
           [ 0., 12.]])
    """
    _, several = _as_primals(x)
    output_shape: list[tuple[int, ...]] = []

    def gradient(*variables: Tensor) -> Any:
        (y,), _ = _call(f, variables, scalar="hessian")
        output_shape.append(y.shape)
        gradients: Sequence[Tensor | None] = [None] * len(variables)
        if y.requires_grad:
            gradients = grad(y, variables, create_graph=True, allow_unused=True)
        return _result(zeros_for_none(gradients, variables), several)

    blocks = jacobian(gradient, x)
    if not output_shape[0]:
        return blocks
    # a one-element output of shape (1,): its Hessian is (1,) + x.shape + x.shape, as JAX's
    lead = output_shape[0]
    if not several:
        return ops.reshape(blocks, lead + blocks.shape)
    return tuple(tuple(ops.reshape(b, lead + b.shape) for b in row) for row in blocks)
