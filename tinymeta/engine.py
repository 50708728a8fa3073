"""The autodiff engine: ``Tensor``, ``Function`` and reverse-mode ``grad``.

How it works, in four sentences. Every op is a small ``Function`` subclass whose ``forward`` runs
on raw backend arrays and whose ``backward`` maps the output's gradient (a Tensor) to the inputs'
gradients (Tensors). Applying a Function while recording is on links the output Tensor to the
Function (``creator``) and the Function to its inputs, so the program builds a graph as it runs.
``grad`` walks that graph from the outputs back to the inputs in topological order, calling each
``backward``. Because ``backward`` is written in tinymeta's own ops, running it with recording on
(``create_graph=True``) builds a graph of the gradient itself, which can be differentiated again:
that is all it takes to get Hessian-vector products and exact second-order MAML.

Example::

    >>> import tinymeta as tm
    >>> x = tm.tensor(3.0, requires_grad=True)
    >>> (dx,) = tm.grad(x ** 3, x, create_graph=True)   # 3 x^2 = 27
    >>> (ddx,) = tm.grad(dx, x)                          # 6 x = 18
    >>> float(dx.item()), float(ddx.item())
    (27.0, 18.0)
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from typing import Any

import numpy

from . import backend
from ._checks import flag

# Recording is a per-thread (per-context) flag, never a global switch: ``no_grad`` in one thread
# does not affect another, and the context manager always restores the previous state.
_recording: ContextVar[bool] = ContextVar("tinymeta_recording", default=True)
# True (per context) while a backward pass records the gradient's own graph (create_graph=True): the
# Functions recorded then are tagged ``in_backward``, so tinymeta.viz can tell them from the forward pass.
_recording_backward: ContextVar[bool] = ContextVar("tinymeta_recording_backward", default=False)

if backend.cupy is not None:
    _ARRAY_TYPES: tuple[type, ...] = (numpy.ndarray, backend.cupy.ndarray)
else:
    _ARRAY_TYPES = (numpy.ndarray,)


@contextlib.contextmanager
def grad_mode(enabled: bool) -> Iterator[None]:
    """Turn graph recording on or off inside the ``with`` block, restoring it afterwards."""
    token = _recording.set(flag(enabled, "enabled"))
    try:
        yield
    finally:
        _recording.reset(token)


@contextlib.contextmanager
def _backward_pass(create_graph: bool) -> Iterator[None]:
    """Inside a backward pass: recording is ``create_graph``, and what it records is tagged ``in_backward``."""
    token = _recording_backward.set(bool(create_graph))
    try:
        with grad_mode(create_graph):
            yield
    finally:
        _recording_backward.reset(token)


def no_grad() -> contextlib.AbstractContextManager[None]:
    """Context manager: ops inside it record nothing (their results do not require grad)."""
    return grad_mode(False)


def is_grad_enabled() -> bool:
    """Whether ops applied now are recorded for differentiation."""
    return _recording.get()


class Tensor:
    """An array (NumPy or CuPy) that remembers the op that produced it.

    Create one with :func:`tinymeta.tensor`. ``data`` is the backend array; ``creator`` is the
    ``Function`` that produced it (None for a leaf); ``grad`` is filled by :meth:`backward`.
    """

    __slots__ = ("data", "requires_grad", "grad", "creator", "__weakref__")

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        """NumPy's ufuncs on tensors are tinymeta's ops (``np.exp(t)`` is ``tm.exp(t)``, ``array + t`` is
        ``tm.add(array, t)``), so the graph is kept; see ``numpy_counterpart``."""
        return numpy_counterpart(ufunc, inputs, kwargs, method)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        """NumPy's functions on tensors are tinymeta's of the same name (``np.sum(t, axis=0)`` is
        ``tm.sum(t, axis=0)``, ``np.linalg.solve(a, t)`` is ``tm.linalg.solve``); questions that carry no
        graph are answered (``np.shape(t)``, ``np.allclose(t, u)``); see ``numpy_counterpart``."""
        return numpy_counterpart(func, args, kwargs)

    def __init__(
        self,
        data: Any,
        requires_grad: bool = False,
        dtype: Any = None,
        backend: str | None = None,
    ) -> None:
        self.data = _to_backend_array(data, dtype, backend)
        self.grad: Tensor | None = None
        self.creator: Function | None = None
        self.requires_grad = False
        if flag(requires_grad, "requires_grad"):
            if self.data.dtype.kind != "f":
                raise TypeError(
                    f"only floating-point tensors can require grad, got dtype {self.data.dtype}; "
                    "pass float data or dtype='float64'"
                )
            self.requires_grad = True

    # ---- array-like properties -----------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def dtype(self) -> numpy.dtype:
        return self.data.dtype

    @property
    def backend(self) -> str:
        """ "numpy" or "cupy"."""
        return backend.backend_name(self.data)

    @property
    def T(self) -> Tensor:
        return ops.transpose(self)

    def __len__(self) -> int:
        return len(self.data)

    def __bool__(self) -> bool:  # as NumPy: only a one-element tensor has a truth value
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous; use tm.sum or .numpy()")
        return bool(self.data)

    # One-element tensors convert like NumPy scalars; anything larger is an error, never a guess.
    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.ndim != 0 or self.dtype.kind not in "iu":
            raise TypeError(
                f"only a 0-d integer tensor can be used as an index, got shape {self.shape}, dtype {self.dtype}"
            )
        return int(self.data)

    def __round__(self, ndigits: int | None = None) -> Any:
        return round(self.item(), ndigits)

    def __format__(self, spec: str) -> str:
        if not spec:
            return str(self)
        if self.data.size != 1:
            raise TypeError(f"format spec {spec!r} needs a tensor with one element, got shape {self.shape}")
        return format(self.item(), spec)

    def __iter__(self) -> Iterator[Tensor]:
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        for i in range(len(self.data)):
            yield ops.getitem(self, i)

    # Copies and pickles: a leaf is copied with its data, requires_grad and (detached) grad. A tensor
    # computed inside a graph is refused: its copy could not carry the graph, so gradients would
    # silently stop at it.
    def __reduce_ex__(self, protocol: Any) -> tuple:
        if self.creator is not None:
            raise TypeError(
                f"cannot copy or pickle a tensor of shape {self.shape} that was computed inside a graph: the copy "
                "would not carry the graph, and gradients would silently stop at it; copy t.detach() for its "
                "values, or tinymeta.tensor(t.numpy(), requires_grad=True) for a new leaf"
            )
        grad = None if self.grad is None else self.grad.detach()
        return (_restore_leaf, (self.data, self.requires_grad, grad))

    def __copy__(self) -> Tensor:
        data, requires_grad, grad = self.__reduce_ex__(2)[1]
        return _restore_leaf(data.copy(), requires_grad, None if grad is None else wrap_array(grad.data.copy()))

    def __repr__(self) -> str:
        body = numpy.array2string(self.numpy(), separator=", ", prefix="tensor(")
        flag = ", requires_grad=True" if self.requires_grad else ""
        return f"tensor({body}, dtype={self.dtype}{flag})"

    def __array__(self, dtype: Any = None, copy: Any = None) -> numpy.ndarray:
        """The values, for NumPy's implicit conversions (``np.asarray(t)``, a list of tensors given to a
        NumPy function), refused (TypeError) for a tensor that requires grad while recording: the
        conversion would drop its graph silently (PyTorch refuses too). ``t.numpy()`` is the explicit way."""
        if self.requires_grad and _recording.get():
            raise TypeError(
                f"a tensor that requires grad (shape {self.shape}) cannot become a NumPy array implicitly: "
                "np.asarray(t), np.array(t), or a NumPy function given tensors inside a list (np.sum([p, q]), "
                "np.exp([p, q]), which NumPy converts element by element) would drop its graph. Keep the graph "
                "with tinymeta's ops (tm.stack([p, q]), tm.sum([p, q]), tm.exp, ...); take the values explicitly "
                "with t.numpy() (or t.detach()); or convert inside `with tm.no_grad():`"
            )
        out = self.numpy()
        return out if dtype is None else out.astype(dtype)

    def numpy(self) -> numpy.ndarray:
        """A host NumPy copy of the data."""
        return backend.to_numpy(self.data)

    def item(self) -> Any:
        """The single element as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.item()

    def detach(self) -> Tensor:
        """The same data, cut from the graph (no creator, does not require grad)."""
        return wrap_array(self.data)

    def backward(self, grad: Any = None, create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

        ``grad`` is the upstream gradient (needed when ``self`` is not a scalar). With
        ``create_graph=True`` the accumulated gradients are themselves differentiable.
        """
        if not self.requires_grad:
            raise RuntimeError(
                f"backward() on a tensor of shape {self.shape} that does not require grad: it was computed "
                "without any tensor that requires grad (or under tinymeta.no_grad())"
            )
        create_graph = flag(create_graph, "create_graph")
        leaves: dict[int, Tensor] = {}
        seeds = seed_gradients((self,), None if grad is None else (grad,), what="grad", of="the tensor")
        with _backward_pass(create_graph):
            grads = _backpropagate((self,), seeds, targets=None, leaves=leaves)
            fresh = fresh_gradients([grads[key] for key in leaves], [*seeds, *leaves.values()])
            for leaf, g in zip(leaves.values(), fresh):
                leaf.grad = g if leaf.grad is None else leaf.grad + g

    # ---- operators (defined in tinymeta.ops, imported at the bottom of this module) --------
    def __add__(self, other: Any) -> Tensor:
        return ops.add(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return ops.add(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return ops.sub(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return ops.sub(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return ops.mul(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return ops.mul(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return ops.div(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return ops.div(other, self)

    def __pow__(self, other: Any) -> Tensor:
        return ops.power(self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return ops.power(other, self)

    def __matmul__(self, other: Any) -> Tensor:
        return ops.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return ops.matmul(other, self)

    def __neg__(self) -> Tensor:
        return ops.neg(self)

    def __pos__(self) -> Tensor:  # a copy, as numpy.positive: never the tensor itself
        return ops.shape.Copy()(self)

    def __abs__(self) -> Tensor:
        return ops.abs(self)

    def __getitem__(self, index: Any) -> Tensor:
        return ops.getitem(self, index)

    # Comparisons give boolean tensors that are not differentiable.
    def __lt__(self, other: Any) -> Tensor:
        return _compare("less", self, other)

    def __le__(self, other: Any) -> Tensor:
        return _compare("less_equal", self, other)

    def __gt__(self, other: Any) -> Tensor:
        return _compare("greater", self, other)

    def __ge__(self, other: Any) -> Tensor:
        return _compare("greater_equal", self, other)

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return _compare("equal", self, other)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return _compare("not_equal", self, other)

    __hash__ = object.__hash__  # tensors are hashed by identity

    # ---- NumPy-style methods ----------------------------------------------------------------
    def sum(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        return ops.sum(self, axis, keepdims)

    def mean(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        return ops.mean(self, axis, keepdims)

    def max(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        return ops.max(self, axis, keepdims)

    def min(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        return ops.min(self, axis, keepdims)

    def reshape(self, *shape: Any) -> Tensor:
        return ops.reshape(self, shape[0] if len(shape) == 1 else shape)

    def ravel(self) -> Tensor:
        """The elements as a 1-D tensor (may share memory with this one, as ``ndarray.ravel``)."""
        return ops.ravel(self)

    def flatten(self) -> Tensor:
        """The elements as a 1-D tensor of its own (always a copy, as ``ndarray.flatten``; NumPy has no
        function of that name, so neither has tinymeta: ``tinymeta.ravel`` is the function)."""
        return ops.astype(ops.ravel(self), self.dtype, copy=True)

    def squeeze(self, axis: Axis = None) -> Tensor:
        return ops.squeeze(self, axis)

    def transpose(self, *axes: Any) -> Tensor:
        """As ``ndarray.transpose``: no axes (or None) reverses them; else one permutation, given as
        a sequence or as separate integers."""
        if not axes or (len(axes) == 1 and axes[0] is None):
            return ops.transpose(self)
        one_sequence = len(axes) == 1 and not isinstance(axes[0], (int, numpy.integer))
        return ops.transpose(self, tuple(axes[0]) if one_sequence else axes)

    def astype(self, dtype: Any, copy: bool = True) -> Tensor:
        return ops.astype(self, dtype, copy)


Axis = int | Sequence[int] | None
TensorLike = Any  # a Tensor, a backend array, or anything numpy.asarray accepts
_new_object = object.__new__


# ---------------------------------------------------------------------------------------------
# Internal API: the few helpers tinymeta's own modules (ops, nn, meta, transforms, testing) build
# on. ``wrap_array`` and ``new_leaf`` skip the checks ``tensor()`` makes, so they take backend
# arrays that are already right. (``seed_gradients``, ``fresh_gradients`` and
# ``depends_on_leaves_other_than``, which ``transforms.py`` shares with ``grad``, live beside ``grad``.)
# ---------------------------------------------------------------------------------------------


def wrap_array(data: Any) -> Tensor:
    """A constant Tensor (no gradient, no history) around the backend array ``data``, unchecked."""
    t = _new_object(Tensor)
    t.data = data
    t.requires_grad = False
    t.grad = None
    t.creator = None
    return t


def new_leaf(data: Any) -> Tensor:
    """A fresh leaf that requires grad around a floating-point backend array (no graph history)."""
    t = wrap_array(data)
    t.requires_grad = True
    return t


def zeros_for_none(grads: Sequence[Tensor | None], like: Sequence[Tensor]) -> tuple[Tensor, ...]:
    """The gradients, with zeros (of the matching tensor's shape) where ``grad`` gave None."""
    return tuple(
        g if g is not None else wrap_array(backend.array_module(x.data).zeros_like(x.data)) for g, x in zip(grads, like)
    )


def binary_operands(a: TensorLike, b: TensorLike) -> tuple[Tensor, Tensor]:
    """Both operands of a binary op as Tensors; a Python scalar takes the other operand's dtype and
    backend (NumPy's rule for Python scalars), whichever side it is on."""
    if type(b) is Tensor and type(a) is Tensor:
        return a, b
    if isinstance(a, Tensor) or (type(b) in (int, float) and type(a) not in (int, float)):
        a = as_tensor(a)
        return a, as_tensor(b, a)
    b = as_tensor(b)
    return as_tensor(a, b), b


# ---------------------------------------------------------------------------------------------


def _restore_leaf(data: Any, requires_grad: bool, grad: Tensor | None) -> Tensor:
    """The leaf ``Tensor.__reduce_ex__`` describes (for copy, deepcopy and pickle)."""
    t = new_leaf(data) if requires_grad else wrap_array(data)
    t.grad = grad
    return t


def _check_no_graph_inside(data: Any) -> None:
    """A list or tuple holding a tensor that requires grad would be converted to a constant array,
    silently cutting the gradient: refuse it."""
    if type(data) in (list, tuple):
        for item in data:
            if type(item) is Tensor:
                if item.requires_grad:
                    raise TypeError(
                        "a list or tuple holding a tensor that requires grad cannot become one array without "
                        "losing its gradient; use tinymeta.stack(...) to keep it (or .detach() the tensors)"
                    )
            elif type(item) in (list, tuple):
                _check_no_graph_inside(item)


def _holds_a_graph(data: Any) -> bool:
    """Whether a (nested) list or tuple holds a tensor that requires grad."""
    return any(
        (type(item) is Tensor and item.requires_grad) or (type(item) in (list, tuple) and _holds_a_graph(item))
        for item in data
    )


# NumPy's ufuncs whose tinymeta op has another name; the comparisons and the predicates (isnan, ...)
# give constant boolean tensors; rint is round (both round halves to even).
_UFUNC_NAMES = {
    "add": "add", "subtract": "sub", "multiply": "mul", "divide": "div", "true_divide": "div", "negative": "neg",
    "absolute": "abs", "remainder": "mod", "power": "power", "matmul": "matmul", "rint": "round",
}  # fmt: skip
_COMPARISONS = ("greater", "greater_equal", "less", "less_equal", "equal", "not_equal")
_PREDICATES = ("isnan", "isinf", "isfinite", "signbit")
# NumPy's functions whose tinymeta op has another name (NumPy's aliases of the same function)
_FUNCTION_NAMES = {"amax": "max", "amin": "min", "around": "round"}
# Questions about a tensor that carry no graph: answered by NumPy itself, on the tensors' arrays (shape,
# ndim, size read no values; the others give booleans: a bool, or isclose's constant boolean tensor).
_GRAPH_FREE = ("shape", "ndim", "size", "allclose", "array_equal", "array_equiv", "isclose")


def _numpy_namespace(func: Any) -> str | None:
    """``"numpy"`` or ``"numpy.linalg"`` where ``func`` is that namespace's own function of its name (the
    same object), else None: ``numpy.emath.sqrt`` is not ``numpy.sqrt``, nor ``numpy.linalg.outer`` ``numpy.outer``."""
    name = getattr(func, "__name__", None)
    if name is None:
        return None
    if getattr(numpy, name, None) is func:
        return "numpy"
    if getattr(numpy.linalg, name, None) is func:
        return "numpy.linalg"
    return None


def _arrays_of(value: Any) -> Any:
    """``value`` with each Tensor (also inside a list or tuple) replaced by its array."""
    if isinstance(value, Tensor):
        return value.data
    if type(value) in (list, tuple):
        return type(value)(_arrays_of(v) for v in value)
    return value


def _carries_graph(value: Any) -> bool:
    """Whether ``value`` is, or holds in a list, tuple or dict, a Tensor that requires grad."""
    if isinstance(value, Tensor):
        return value.requires_grad
    if type(value) in (list, tuple):
        return any(_carries_graph(v) for v in value)
    if type(value) is dict:
        return any(_carries_graph(v) for v in value.values())
    return False


def numpy_counterpart(func: Any, args: Any, kwargs: dict[str, Any], method: str = "__call__") -> Any:
    """A NumPy function or ufunc called on a Tensor, as tinymeta's op of the same name (NumPy's
    ``__array_function__`` and ``__array_ufunc__`` protocols), so the graph is kept.

    Only NumPy's own top-level and ``numpy.linalg`` functions map, by identity (``numpy.emath.sqrt``,
    ``numpy.fft``'s, SciPy's ufuncs compute something else than the tinymeta op of their name); NumPy's
    aliases map to the op they alias (``amax`` is ``max``, ``around`` and ``rint`` are ``round``);
    ``np.copy`` and ``np.positive`` are a differentiable copy. Questions that carry no graph are
    answered: ``np.shape``, ``np.ndim``, ``np.size``, ``np.allclose``, ``np.array_equal`` as NumPy
    answers them, and the comparisons, ``isnan``, ``isinf``, ``isfinite`` and ``isclose`` as constant
    boolean tensors. What tinymeta has no op for (or an argument its op does not take: ``out=``,
    ``dtype=``, a ufunc's ``.reduce``) is a TypeError that names what to use instead, never a silent
    copy of the values.
    """
    import inspect

    import tinymeta

    name = getattr(func, "__name__", str(func))
    space = _numpy_namespace(func)
    module = getattr(func, "__module__", None) or "numpy"
    call = f"{space or module}.{name}" + ("" if method == "__call__" else f".{method}")
    values = "or t.numpy() for the values (without the graph)"
    # Where nothing requires grad there is no graph to keep or drop: what tinymeta has no op (or no
    # argument) for, NumPy answers on the arrays (np.median(t), np.add.reduce(t), np.emath.sqrt(t))
    graph_free = not (_carries_graph(args) or _carries_graph(kwargs))

    def numpy_answer() -> Any:
        numpy_function = func if method == "__call__" else getattr(func, method)
        return numpy_function(*_arrays_of(args), **{k: _arrays_of(v) for k, v in kwargs.items()})

    if space is None and graph_free:
        return numpy_answer()
    if space is None:
        other = f" (not numpy.{name})" if callable(getattr(numpy, name, None)) else ""
        raise TypeError(
            f"{call}{other} has no tinymeta counterpart: tinymeta maps only NumPy's own top-level and "
            "numpy.linalg functions, as a function of another module may compute something else than "
            "tinymeta's op of its name (numpy.emath.sqrt(-4) is 2j), and on a Tensor it would drop the graph: "
            f"compute it with tinymeta's ops (tinymeta.ops.REGISTRY lists them), {values}"
        )
    in_linalg = space == "numpy.linalg"
    op = None
    if isinstance(func, numpy.ufunc):
        if method == "__call__" and not kwargs:
            if name in _COMPARISONS:
                return _compare(name, *args)
            if name in _PREDICATES and len(args) == 1:
                x = as_tensor(args[0])
                return wrap_array(getattr(backend.array_module(x.data), name)(x.data))
            if name == "positive" and len(args) == 1:
                return ops.shape.Copy()(as_tensor(args[0]))  # +t
            if name == "rint" and len(args) == 1 and as_tensor(args[0]).dtype.kind != "f":
                x = as_tensor(args[0])  # NumPy's rint of integers is floating
                return ops.round(ops.astype(x, numpy.rint(numpy.zeros(0, x.dtype)).dtype))
        target = _UFUNC_NAMES.get(name, name)
        op = getattr(ops, target) if target in ops.__all__ else None
        if op is not None and method == "__call__" and not kwargs:
            return op(*args)
        unsupported = f"keywords {sorted(kwargs)}" if method == "__call__" else f"the ufunc method .{method}"
    else:
        if not in_linalg and name in _GRAPH_FREE:
            answer = numpy_answer()
            return wrap_array(answer) if name == "isclose" else answer
        if not in_linalg and name == "copy":
            if (len(args) != 1 or kwargs) and graph_free:
                return numpy_answer()
            if len(args) != 1 or kwargs:
                raise TypeError(f"{call} on a tinymeta Tensor: give the tensor alone (np.copy(t)), {values}")
            return ops.shape.Copy()(as_tensor(args[0]))
        namespace = tinymeta.linalg if in_linalg else tinymeta
        target = f"{'linalg.' if in_linalg else ''}{_FUNCTION_NAMES.get(name, name)}"
        op_name = target.rpartition(".")[2]
        op = getattr(namespace, op_name) if op_name in namespace.__all__ else None
        if op is not None:
            try:
                inspect.signature(op).bind(*args, **kwargs)
            except TypeError as error:
                unsupported = f"these arguments ({error}; its signature is {op_name}{inspect.signature(op)})"
            else:
                return op(*args, **kwargs)
    if graph_free:
        return numpy_answer()
    if op is None:
        raise TypeError(
            f"{call} has no tinymeta counterpart, and on a Tensor it would drop the graph: compute it with "
            f"tinymeta's ops (tinymeta.ops.REGISTRY lists them), {values}"
        )
    raise TypeError(
        f"{call} on a tinymeta Tensor: tinymeta.{target} does not take {unsupported}; call it without them, {values}"
    )


def _to_backend_array(data: Any, dtype: Any, backend_name: str | None) -> Any:
    if isinstance(data, Tensor):
        data = data.data
    _check_no_graph_inside(data)
    if backend_name is None:
        # A CuPy array stays on its GPU; anything else goes to the default backend.
        xp = backend.array_module(data)
        if xp is numpy:
            xp = backend.get_backend(None)
    else:
        xp = backend.get_backend(backend_name)
    if xp is numpy and backend.cupy is not None and isinstance(data, backend.cupy.ndarray):
        data = backend.cupy.asnumpy(data)
    return xp.array(data, dtype=dtype)


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None, backend: str | None = None) -> Tensor:
    """A new leaf Tensor holding a copy of ``data``.

    dtypes follow NumPy: Python floats and lists of floats give float64, float32 arrays stay
    float32. ``backend`` is "numpy" or "cupy"; None keeps a CuPy array on its GPU and puts
    anything else on the default backend (NumPy, unless ``TINYMETA_BACKEND`` says otherwise).

    >>> tensor([1.0, 2.0], requires_grad=True)
    tensor([1., 2.], dtype=float64, requires_grad=True)
    """
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, backend=backend)


def as_tensor(x: TensorLike, like: Tensor | None = None) -> Tensor:
    """``x`` itself if it is a Tensor, else a constant Tensor on ``like``'s backend.

    A plain array or list becomes a constant on ``like``'s backend (a NumPy array next to a CuPy
    tensor is copied to the GPU); two *tensors* on different backends are never mixed silently.
    A Python scalar takes ``like``'s floating dtype, so ``2 * x`` stays float32 for a float32
    ``x`` (NumPy's rule for Python scalars).
    """
    kind = type(x)
    if kind is Tensor:
        return x
    if like is not None and (kind is float or kind is int):
        data = like.data
        dtype = data.dtype
        if dtype.kind == "f" or (kind is int and dtype.kind in "iu"):
            if type(data) is numpy.ndarray:
                return wrap_array(_numpy_scalar(x, dtype))
            return wrap_array(backend.array_module(data).asarray(x, dtype=dtype))
    if isinstance(x, Tensor):
        return x
    if type(x) in (list, tuple) and _holds_a_graph(x):  # [t1, t2]: stacked, so the gradient reaches each
        return ops.stack([as_tensor(item, like) for item in x])
    if isinstance(x, numpy.ndarray) and type(x) is not numpy.ndarray:
        x = numpy.asarray(x)  # a subclass (np.matrix: * is a matrix product) as the plain array it holds
    if like is None:
        return wrap_array(x if isinstance(x, _ARRAY_TYPES) else backend.get_backend(None).asarray(x))
    if type(x) is type(like.data):
        return wrap_array(x)
    return wrap_array(backend.asarray_like(x, like.data))


_scalar_cache: dict[numpy.dtype, dict[float, numpy.ndarray]] = {}


def _numpy_scalar(x: float, dtype: numpy.dtype) -> numpy.ndarray:
    """A read-only 0-d array holding ``x``; the constants of ``x * 2.0``-style code are cached."""
    cache = _scalar_cache.get(dtype)
    if cache is None:
        cache = _scalar_cache[dtype] = {}
    array = cache.get(x)
    if array is None:
        array = numpy.asarray(x, dtype=dtype)
        if x == 0 or x != x:  # -0.0 == 0.0 and nan != nan: such keys cannot be cached safely
            return array
        array.flags.writeable = False
        if len(cache) > 4096:
            cache.clear()
        cache[x] = array
    return array


def stop_gradient(x: TensorLike) -> Tensor:
    """``x`` as a constant: the same values, and zero gradient flows through it."""
    return as_tensor(x).detach()


def _compare(ufunc_name: str, a: TensorLike, b: TensorLike) -> Tensor:
    a = as_tensor(a, b if isinstance(b, Tensor) else None)
    b = as_tensor(b, a)
    check_same_backend(ufunc_name, (a, b))
    xp = backend.array_module(a.data)
    return wrap_array(xp.asarray(getattr(xp, ufunc_name)(a.data, b.data)))


def check_same_backend(op_name: str, tensors: Sequence[Tensor]) -> None:
    """Raise TypeError if ``tensors`` live on different backends (NumPy and CuPy)."""
    first = type(tensors[0].data)
    for t in tensors[1:]:
        if type(t.data) is not first:
            names = [backend.backend_name(x.data) for x in tensors]
            if len(set(names)) > 1:
                raise TypeError(
                    f"{op_name}: cannot mix backends {names}; move the tensors to one backend "
                    "first (e.g. tinymeta.tensor(x, backend='cupy'))"
                )


class Function:
    """One differentiable op: ``forward`` on raw arrays, ``backward`` in Tensor ops.

    The rule every subclass follows: ``backward`` computes the input gradients **only with
    tinymeta ops on Tensors** (it may read ``.data`` only to build a constant, such as relu's mask
    ``x > 0``). Then the engine can run ``backward`` with recording on, and the gradient is itself
    a differentiable function of the inputs: gradients of any order come for free.

    ``backward(gy)`` returns one gradient per input (a Tensor, or None for an input that does not
    require grad); a single-input op may return the Tensor alone. Inputs are held strongly, the
    output weakly (``self.output()``), so a graph never contains a reference cycle.

    ``in_backward`` is set (True) only on a Function recorded by a backward pass run with
    ``create_graph=True``: a node of a gradient's graph, not of the forward pass (``tinymeta.viz``
    draws them apart; read it with ``getattr(f, "in_backward", False)``).

    A Function written outside tinymeta has what its ``backward`` returns checked (one gradient per
    input, each a Tensor of its input's shape), so a forgotten or misshapen gradient is an error that
    names it; tinymeta's own ops are spared the per-node cost, their gradients' shapes being tested
    op by op (tests/test_ops.py).
    """

    __slots__ = ("inputs", "output", "in_backward")
    check_backward = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "check_backward" not in cls.__dict__:  # a class may set it itself
            cls.check_backward = not cls.__module__.startswith("tinymeta.")

    def __call__(self, *inputs: Tensor) -> Tensor:
        if len(inputs) == 1:
            y = self.forward(inputs[0].data)
        elif len(inputs) == 2:
            a, b = inputs[0].data, inputs[1].data
            if type(a) is not type(b):
                check_same_backend(type(self).__name__, inputs)
            y = self.forward(a, b)
        else:
            check_same_backend(type(self).__name__, inputs)
            y = self.forward(*[x.data for x in inputs])
        if not isinstance(y, _ARRAY_TYPES):  # NumPy returns scalars for 0-d results
            y = numpy.asarray(y)
        out = _new_object(Tensor)
        out.data = y
        out.grad = None
        out.requires_grad = False
        out.creator = None
        if _recording.get():
            for x in inputs:
                if x.requires_grad:
                    kind = y.dtype.kind
                    if kind == "f":
                        out.requires_grad = True
                        out.creator = self
                        self.inputs = inputs
                        self.output = weakref.ref(out)
                        if _recording_backward.get():
                            self.in_backward = True
                    elif kind == "c":
                        raise TypeError(
                            f"{type(self).__name__} made a complex result ({y.dtype}) from a tensor that requires "
                            "grad: tinymeta differentiates real functions only; keep complex numbers out of the graph"
                        )
                    break  # an integer or boolean result is a constant: it carries no gradient
        return out

    def forward(self, *xs: Any) -> Any:
        raise NotImplementedError

    def backward(self, gy: Tensor) -> Any:
        raise NotImplementedError


# ---- reverse mode --------------------------------------------------------------------------


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: TensorLike | Sequence[TensorLike] | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """Gradients of ``sum_i <grad_outputs[i], outputs[i]>`` with respect to each input.

    Semantics of ``torch.autograd.grad``: ``grad_outputs`` may be omitted only for scalar (one
    element) outputs; with ``create_graph=True`` the returned gradients are recorded and can be
    differentiated again; an input the outputs do not depend on is an error unless
    ``allow_unused=True``, which gives None for it. Leaves' ``.grad`` are not touched.

    Each gradient has its input's dtype (a float32 input gets a float32 gradient even where the
    computation promoted to float64) and is a writable array of its own: it never shares memory with
    a ``grad_outputs`` array, an input or another returned gradient.
    """
    create_graph, allow_unused = flag(create_graph, "create_graph"), flag(allow_unused, "allow_unused")
    outputs = _as_tensor_tuple(outputs, "outputs")
    inputs = _as_tensor_tuple(inputs, "inputs")
    for i, x in enumerate(inputs):
        if not x.requires_grad:
            raise ValueError(f"inputs[{i}] (shape {x.shape}) does not require grad; create it with requires_grad=True")
    if grad_outputs is not None and not isinstance(grad_outputs, (list, tuple)):
        grad_outputs = (grad_outputs,)
    seeds = seed_gradients(outputs, grad_outputs)
    with _backward_pass(create_graph):
        grads = _backpropagate(outputs, seeds, targets={id(x) for x in inputs})
        result = fresh_gradients([grads.get(id(x)) for x in inputs], [*seeds, *inputs])
    if not allow_unused:
        for i, (x, g) in enumerate(zip(inputs, result)):
            if g is None:
                why = (
                    "none of the outputs requires grad (they were computed without any tensor that requires "
                    "grad, or under tinymeta.no_grad())"
                    if not any(y.requires_grad for y in outputs)
                    else "it was not used to compute the outputs"
                )
                raise ValueError(
                    f"inputs[{i}] (shape {x.shape}) got no gradient: {why}; pass allow_unused=True to get None for it"
                )
    return tuple(result)


def _as_tensor_tuple(xs: Any, what: str) -> tuple[Tensor, ...]:
    if isinstance(xs, Tensor):
        return (xs,)
    if isinstance(xs, dict):
        raise TypeError(f"{what} must be a Tensor or a sequence of Tensors, got a dict; pass list(d.values())")
    if isinstance(xs, (str, bytes, *_ARRAY_TYPES)) or not hasattr(xs, "__iter__"):
        hint = " (was it converted with .item(), float() or NumPy?)" if what == "outputs" else ""
        raise TypeError(f"{what} must be a Tensor or a sequence of Tensors, got {type(xs).__name__}{hint}")
    xs = tuple(xs)
    for i, x in enumerate(xs):
        if not isinstance(x, Tensor):
            raise TypeError(f"{what}[{i}] must be a Tensor, got {type(x).__name__}")
    if not xs:
        raise ValueError(f"{what} is empty")
    return xs


def seed_gradients(
    outputs: Sequence[Tensor], grad_outputs: Sequence[Any] | None, what: str = "grad_outputs", of: str = "outputs"
) -> list[Tensor]:
    """One upstream gradient per output: ones for a scalar output, else the given array in the output's
    dtype (differentiably cast: a seed may itself require grad). Error messages call the seeds ``what``
    and the outputs ``of`` (the names the user knows them by), indexed where there are several."""
    if grad_outputs is not None and len(grad_outputs) != len(outputs):
        raise ValueError(f"got {len(grad_outputs)} {what} for {len(outputs)} {of}; give one per output")
    indexed = len(outputs) > 1 or what == "grad_outputs"
    seeds = []
    for i, y in enumerate(outputs):
        name, output = (f"{what}[{i}]", f"{of}[{i}]") if indexed else (what, of)
        g = None if grad_outputs is None else grad_outputs[i]
        if g is None:
            if y.data.size != 1:
                raise ValueError(
                    f"{output} has shape {y.shape}: the gradient of a non-scalar output needs {name} of the same shape"
                )
            g = wrap_array(backend.array_module(y.data).ones_like(y.data))
        else:
            g = as_tensor(g, y)
            check_same_backend(what, (y, g))
            if g.shape != y.shape:
                raise ValueError(f"{name} has shape {g.shape} but {output} has shape {y.shape}")
            if g.dtype.kind not in "fiub":
                raise TypeError(
                    f"{name} must be real, got dtype {g.dtype}: tinymeta differentiates real functions only"
                )
            if g.dtype != y.dtype and y.dtype.kind == "f":
                g = ops.astype(g, y.dtype)
        seeds.append(g)
    return seeds


def fresh_gradients(gradients: Sequence[Tensor | None], others: Sequence[Tensor]) -> list[Tensor | None]:
    """The gradients, each its own writable array. A gradient is copied (a differentiable copy when
    recording) when it is read-only or shares memory with one of ``others`` (the caller's
    ``grad_outputs``, the inputs) or with a gradient already returned; a view of a temporary that
    nothing else holds is returned as it is."""
    taken = {id(_root(t.data)) for t in others}
    result = []
    for g in gradients:
        if g is not None:
            root = id(_root(g.data))
            if root in taken or not getattr(g.data.flags, "writeable", True):
                g = ops.astype(g, g.dtype)
                root = id(g.data)
            taken.add(root)
        result.append(g)
    return result


def _root(array: Any) -> Any:
    """The array whose memory ``array`` views (itself when it owns its memory)."""
    while array.base is not None:
        array = array.base
    return array


def depends_on_leaves_other_than(tensors: Sequence[Tensor], inside: set[int]) -> bool:
    """Whether the graph of ``tensors`` reaches a leaf that requires grad whose id is not in ``inside``.

    The transforms ask this to decide whether their results must carry a graph: they do when they
    depend on something the caller can differentiate (a primal that requires grad, a tensor the
    function closes over), not merely on the transform's own internal leaves.
    """
    seen: set[Function] = set()
    todo = list(tensors)
    while todo:
        t = todo.pop()
        if t.requires_grad:
            c = t.creator
            if c is None:
                if id(t) not in inside:
                    return True
            elif c not in seen:
                seen.add(c)
                todo.extend(c.inputs)
    return False


def _backpropagate(
    outputs: Sequence[Tensor],
    seeds: Sequence[Tensor],
    targets: set[int] | None,
    leaves: dict[int, Tensor] | None = None,
) -> dict[int, Tensor]:
    """Reverse-mode sweep; returns gradients keyed by ``id(tensor)``.

    1. Order the Functions so that each comes after all its consumers (``_topological_order``).
    2. With ``targets`` (the ids of the tensors ``grad`` was asked about), keep only the Functions
       on a path from an output to a target (``_prune``): in MAML's inner loop, the gradient at
       step s must not walk back through the s steps before it.
    3. Run each Function's backward in that order and accumulate the gradients of its inputs.
       Gradients of intermediate tensors are dropped as soon as they are used, unless they are
       targets. ``leaves``, when given, collects the leaf tensors that received a gradient.
    """
    grads: dict[int, Tensor] = {}
    for y, g in zip(outputs, seeds):
        if y.requires_grad:
            key = id(y)
            grads[key] = g if key not in grads else grads[key] + g
            if leaves is not None and y.creator is None:
                leaves[key] = y

    order = _topological_order(outputs)
    needed: Any = None
    if targets is not None:
        order, needed = _prune(order, targets)

    no_targets: Any = ()
    for f in order:
        key = id(f.output())
        gy = grads.get(key) if key in (targets or no_targets) else grads.pop(key, None)
        if gy is None:  # no gradient reached this op's output: it contributes nothing
            continue
        input_grads = f.backward(gy)
        if type(input_grads) is not tuple:
            input_grads = tuple(input_grads) if type(input_grads) is list else (input_grads,)
        if f.check_backward:
            _check_gradients(f, input_grads)
        for x, g in zip(f.inputs, input_grads):
            if g is None or not x.requires_grad:
                continue
            dtype = x.data.dtype
            if g.data.dtype is not dtype and g.data.dtype != dtype:  # a gradient has its input's dtype
                g = ops.astype(g, dtype)
            key = id(x)
            c = x.creator
            if needed is not None and key not in targets and c not in needed:
                continue  # leads to no target
            previous = grads.get(key)
            grads[key] = g if previous is None else previous + g
            if c is None and leaves is not None:
                leaves[key] = x
    return grads


def _check_gradients(f: Function, input_grads: tuple[Any, ...]) -> None:
    """A custom Function's ``backward`` result: one gradient per input, each None or a Tensor of its
    input's shape; a RuntimeError naming the Function otherwise (the gradient would flow on wrong)."""
    if len(input_grads) != len(f.inputs):
        raise RuntimeError(
            f"{type(f).__name__}.backward returned {len(input_grads)} gradient(s) for {len(f.inputs)} "
            "input(s): one per input, None for an input without one"
        )
    for i, (x, g) in enumerate(zip(f.inputs, input_grads)):
        if g is not None and (not isinstance(g, Tensor) or g.data.shape != x.data.shape):
            what = f"a gradient of shape {g.data.shape}" if isinstance(g, Tensor) else f"a {type(g).__name__}"
            raise RuntimeError(
                f"{type(f).__name__}.backward returned {what} for input {i} of shape {x.data.shape}: a "
                "gradient is a Tensor of its input's shape (sum a broadcast gradient back over the broadcast axes)"
            )


def _topological_order(outputs: Sequence[Tensor]) -> list[Function]:
    """Every Function that ``outputs`` depend on, each after all the Functions that consume its output.

    Count each Function's consumers with an explicit stack (no recursion, O(nodes + edges)), then
    emit a Function once its count drops to zero (Kahn's algorithm)."""
    consumers: dict[Function, int] = {}
    roots = []
    for y in outputs:
        f = y.creator
        if f is not None and f not in consumers:
            consumers[f] = 0
            roots.append(f)
    todo = list(roots)
    while todo:
        for x in todo.pop().inputs:
            c = x.creator
            if c is not None:
                if c in consumers:
                    consumers[c] += 1
                else:
                    consumers[c] = 1
                    todo.append(c)

    order = []
    ready = [f for f in roots if consumers[f] == 0]
    while ready:
        f = ready.pop()
        order.append(f)
        for x in f.inputs:
            c = x.creator
            if c is not None:
                n = consumers[c] - 1
                consumers[c] = n
                if n == 0:
                    ready.append(c)
    return order


def _prune(order: list[Function], targets: set[int]) -> tuple[list[Function], set[Function]]:
    """The Functions of ``order`` on a path to a target tensor (ids in ``targets``), and that set."""
    needed: set[Function] = set()
    for f in reversed(order):  # inputs before the ops that consume them
        for x in f.inputs:
            if id(x) in targets or x.creator in needed:
                needed.add(f)
                break
    return [f for f in order if f in needed], needed


# The one deliberate import cycle: the ops are defined in their own modules, which import Tensor and
# Function from here, and Tensor's operators and methods above call them as ``ops.<name>`` when they
# run (by then this import has happened).
from . import ops  # noqa: E402
