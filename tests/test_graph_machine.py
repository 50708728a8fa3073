"""The engine against a tiny naive reference on random graphs (a hypothesis state machine).

The machine builds a random expression graph step by step, reusing earlier nodes (so gradients
must be accumulated over several paths), and at any point checks tinymeta's gradient of a random
node with respect to the leaves against a naive forward-mode reference: every node carries, next
to its value, its exact derivative with respect to each leaf, propagated by the chain rule as the
node is created. No graph walk is involved in the reference, so it checks the walk itself.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import tinymeta as tm

N_LEAVES = 3
SIZE = 2  # every node is a vector of 2 elements: values and derivatives are elementwise

UNARY = {  # name: (tinymeta op, value, derivative)
    "tanh": (tm.tanh, np.tanh, lambda v: 1 - np.tanh(v) ** 2),
    "sin": (tm.sin, np.sin, np.cos),
    "exp_of_tanh": (
        lambda t: tm.exp(tm.tanh(t)),
        lambda v: np.exp(np.tanh(v)),
        lambda v: np.exp(np.tanh(v)) * (1 - np.tanh(v) ** 2),
    ),
    "square": (lambda t: t * t, np.square, lambda v: 2 * v),
}


class GraphMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.nodes: list[tuple[tm.Tensor, np.ndarray, np.ndarray]] = []  # (tensor, value, d value / d leaves)
        self.leaves: list[tm.Tensor] = []

    @initialize(values=st.lists(st.floats(-1.5, 1.5), min_size=N_LEAVES * SIZE, max_size=N_LEAVES * SIZE))
    def make_leaves(self, values: list[float]) -> None:
        for i in range(N_LEAVES):
            v = np.array(values[i * SIZE : (i + 1) * SIZE])
            t = tm.tensor(v, requires_grad=True)
            derivative = np.zeros((N_LEAVES, SIZE))
            derivative[i] = 1.0
            self.leaves.append(t)
            self.nodes.append((t, v, derivative))

    def pick(self, data: st.DataObject) -> tuple[tm.Tensor, np.ndarray, np.ndarray]:
        return self.nodes[data.draw(st.integers(0, len(self.nodes) - 1))]

    @rule(data=st.data(), name=st.sampled_from(sorted(UNARY)))
    def apply_unary(self, data: st.DataObject, name: str) -> None:
        t, v, d = self.pick(data)
        op, value, derivative = UNARY[name]
        self.nodes.append((op(t), value(v), derivative(v) * d))

    @rule(data=st.data(), kind=st.sampled_from(["add", "sub", "mul"]))
    def apply_binary(self, data: st.DataObject, kind: str) -> None:
        (a, va, da), (b, vb, db) = self.pick(data), self.pick(data)  # may be the same node twice
        if kind == "add":
            self.nodes.append((a + b, va + vb, da + db))
        elif kind == "sub":
            self.nodes.append((a - b, va - vb, da - db))
        else:
            self.nodes.append((a * b, va * vb, da * vb + va * db))

    @rule(data=st.data(), scale=st.floats(-2, 2))
    def scale(self, data: st.DataObject, scale: float) -> None:
        t, v, d = self.pick(data)
        self.nodes.append((t * scale, v * scale, d * scale))

    @precondition(lambda self: len(self.nodes) > N_LEAVES)
    @rule(data=st.data(), weights=st.lists(st.floats(-2, 2), min_size=SIZE, max_size=SIZE))
    def check_gradient(self, data: st.DataObject, weights: list[float]) -> None:
        t, _, d = self.pick(data)
        w = np.array(weights)
        grads = tm.grad(t, self.leaves, grad_outputs=w, allow_unused=True)
        for i, g in enumerate(grads):
            expected = w * d[i]
            got = np.zeros(SIZE) if g is None else g.numpy()
            if g is None:
                assert not expected.any(), f"leaf {i}: no gradient, expected {expected}"
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, err_msg=f"leaf {i}")

    @invariant()
    def values_match(self) -> None:
        for t, v, _ in self.nodes[-1:]:
            np.testing.assert_allclose(t.numpy(), v, rtol=1e-12, atol=1e-12)


TestGraphMachine = GraphMachine.TestCase
