# %% [markdown]
# # 01 — An engine you can read in ten minutes
#
# MAML differentiates *through* gradient steps, so it needs an engine whose gradients can be differentiated
# again. This file builds one from scratch (under 100 lines of code, the same design as tinymeta) and checks
# it against tinymeta to first and second order. A `Variable` holds a NumPy array and remembers the
# `Function` that made it (its `creator`). A `Function` has `forward` on raw arrays and `backward` written
# **with this engine's own ops** on Variables. That one rule is everything: run `backward` while recording,
# and the gradient is itself a graph of differentiable ops, so it can be differentiated again: gradients of
# any order, Hessian-vector products and exact MAML come for free (micrograd's backward works on floats: no
# second order). `grad(..., create_graph=False)` switches recording **off** while it runs the backwards: the
# result is a constant, cheap and first-order only. With `create_graph=True` the backward pass is recorded.

# %%
import numpy as np

import tinymeta as tm

RECORDING = [True]  # whether Functions record the graph; grad() sets it to create_graph while it runs


class Variable:
    def __init__(self, data, creator=None):
        self.data, self.creator = np.asarray(data, dtype=np.float64), creator
        self.shape = self.data.shape

    def __add__(self, other):
        return Add()(self, other)

    def __mul__(self, other):
        return Mul()(self, other)

    def __neg__(self):
        return self * -1.0


class Function:
    def __call__(self, *inputs):
        inputs = [x if isinstance(x, Variable) else Variable(x) for x in inputs]
        out = Variable(self.forward(*[x.data for x in inputs]))
        if RECORDING[0]:  # remember the graph: out -> this Function -> its inputs
            self.inputs, self.output, out.creator = inputs, out, self  # (tinymeta holds `output` weakly)
        return out


# %%
# The ops. Each `backward` multiplies the incoming gradient `gy` by the op's derivative **with Variables and
# the engine's own ops**: while recording, those products become nodes of the graph too.
class Add(Function):
    forward = staticmethod(np.add)

    def backward(self, gy):  # an input that was broadcast gets its gradient summed back to its shape
        a, b = self.inputs
        return sum_to(gy, a.shape), sum_to(gy, b.shape)


class Mul(Function):
    forward = staticmethod(np.multiply)

    def backward(self, gy):
        a, b = self.inputs
        return sum_to(gy * b, a.shape), sum_to(gy * a, b.shape)


class Exp(Function):
    forward = staticmethod(np.exp)

    def backward(self, gy):  # d exp(x) = exp(x) dx: reuse the output
        return gy * self.output


class Sin(Function):
    forward = staticmethod(np.sin)

    def backward(self, gy):  # Sin's backward uses Cos, whose backward uses Sin: derivatives of any order
        return gy * Cos()(self.inputs[0])


class Cos(Function):
    forward = staticmethod(np.cos)

    def backward(self, gy):
        return -(gy * Sin()(self.inputs[0]))


class SumTo(Function):  # sum over the broadcast axes down to `shape`; shape () sums everything
    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        lead = x.ndim - len(self.shape)
        axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(self.shape) if n == 1)
        return x.sum(axis=axes, keepdims=True).reshape(self.shape)

    def backward(self, gy):  # SumTo and BroadcastTo: each is the other's backward
        return BroadcastTo(self.inputs[0].shape)(gy)


class BroadcastTo(SumTo):
    def forward(self, x):
        return np.broadcast_to(x, self.shape).copy()

    def backward(self, gy):
        return sum_to(gy, self.inputs[0].shape)


def sum_to(x, shape):
    return x if x.shape == shape else SumTo(shape)(x)


mini = dict(sum=lambda x: sum_to(x, ()), exp=lambda x: Exp()(x), sin=lambda x: Sin()(x))


# %%
# The backward walk: in topological order, iteratively (no recursion limit for deep graphs such as long
# inner loops), by counting each Function's consumers (Kahn's algorithm).
def topological_order(y):
    """Every Function y depends on, each after all the Functions that consume its output."""
    consumers, todo = {y.creator: 0}, [y.creator]
    while todo:  # count each Function's consumers, with a stack instead of recursion
        for c in [x.creator for x in todo.pop().inputs if x.creator is not None]:
            todo += [] if c in consumers else [c]
            consumers[c] = consumers.get(c, 0) + 1
    order, ready = [], [y.creator]
    while ready:  # emit a Function once every consumer of its output has been emitted
        order.append(ready.pop())
        for c in [x.creator for x in order[-1].inputs if x.creator is not None]:
            consumers[c] -= 1
            ready += [c] if consumers[c] == 0 else []
    return order


def grad(output, inputs, create_graph=False):
    """d output / d input for each input (output a scalar Variable); recorded only if create_graph."""
    grads, previous = {id(output): Variable(np.ones_like(output.data))}, RECORDING[0]
    RECORDING[0] = create_graph
    try:
        for f in topological_order(output):
            gxs = f.backward(grads.pop(id(f.output)))
            for x, gx in zip(f.inputs, gxs if isinstance(gxs, tuple) else (gxs,)):
                grads[id(x)] = gx if id(x) not in grads else grads[id(x)] + gx  # x used twice: add
    finally:
        RECORDING[0] = previous
    return [grads[id(x)] for x in inputs]


# %% [markdown]
# ## Checked against tinymeta (and against finite differences)
# The same functions, written once for either engine (`e` holds the mini engine's ops or tinymeta's), give
# the same gradient, the same second derivative d/dx Σ_j ∂f/∂x_j = H·1, and the same Hessian-vector product
# H v = d/dx ⟨∇f, v⟩. Both engines apply the same formulas, so they agree to rounding: assert ≤ 1e-12. As an
# independent check, H v is also the central difference (∇f(x + εv) − ∇f(x − εv)) / 2ε of the mini engine's
# gradient: with ε = 1e-5 its error is ~ε² (truncation) + 1e-16/ε (rounding) ~ 1e-10; assert ≤ 1e-7.

# %%
functions = {
    "sum(exp(x)*x*x)": lambda e, x: e["sum"](e["exp"](x) * x * x),
    "sum(exp(sin(x))*x)": lambda e, x: e["sum"](e["exp"](e["sin"](x)) * x),
    "sum(sin(2x)+3exp(x))": lambda e, x: e["sum"](e["sin"](x * 2.0) + e["exp"](x) * 3.0),
}
tinymeta_ops = dict(sum=tm.sum, exp=tm.exp, sin=tm.sin)
rng = np.random.default_rng(0)
x0, v, eps = rng.standard_normal(6), rng.standard_normal(6), 1e-5
for name, f in functions.items():
    results = {}
    for engine, ops, x, g_fn in (
        ("mini", mini, Variable(x0), grad),
        ("tinymeta", tinymeta_ops, tm.tensor(x0, requires_grad=True), tm.grad),
    ):
        (g,) = g_fn(f(ops, x), [x], create_graph=True)  # the gradient, recorded
        (gg,) = g_fn(ops["sum"](g), [x])  # second order: d/dx Σ_j ∂f/∂x_j = H·1
        (hv,) = g_fn(ops["sum"](g * v), [x])  # second order: H v
        results[engine] = [np.asarray(t.data) for t in (g, gg, hv)]
    diffs = [float(np.abs(a - b).max()) for a, b in zip(results["mini"], results["tinymeta"])]
    g_plus, g_minus = (grad(f(mini, xs), [xs])[0] for xs in (Variable(x0 + eps * v), Variable(x0 - eps * v)))
    fd = float(np.abs((g_plus.data - g_minus.data) / (2 * eps) - results["mini"][2]).max())
    print(f"{name:22s} max |mini - tinymeta|: grad {diffs[0]:.1e}, H·1 {diffs[1]:.1e}, Hv {diffs[2]:.1e};", end=" ")
    print(f"|Hv - finite difference| {fd:.1e}")
    assert max(diffs) <= 1e-12 and fd <= 1e-7, (diffs, fd)

# %% [markdown]
# ## What `create_graph` changes
# Without it the backward pass is not recorded: the gradient is a constant (no `creator`), the fast path for
# ordinary training. With it the gradient has a graph of its own, built from the same ops:

# %%
x = Variable(x0)
y = functions["sum(exp(x)*x*x)"](mini, x)
(g_const,), (g_graph,) = grad(y, [x]), grad(y, [x], create_graph=True)
print(f"f's graph: {len(topological_order(y))} ops; its gradient's graph: without create_graph", end=" ")
print(f"{'none' if g_const.creator is None else 'some'}, with create_graph {len(topological_order(g_graph))} ops")
assert g_const.creator is None and len(topological_order(g_graph)) > len(topological_order(y))

# %% [markdown]
# ## What tinymeta adds on top of the same design
# `requires_grad` and **pruning** (a backward walks only the ops between the outputs and the requested inputs),
# outputs held weakly (no reference cycles), `grad_outputs`, dtypes, CuPy arrays on a GPU, many more ops (each
# checked against finite differences), and `vjp`, `jvp`, `hvp`, `jacobian`, `hessian`.
