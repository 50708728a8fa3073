# %% [markdown]
# # 04 — MAML as a computation graph
#
# The lecture draws MAML as one procedure: θ → (inner gradient step) → φ → query loss L(φ, D^ts), and
# the outer loop differentiates the whole procedure with respect to θ. In tinymeta that procedure *is*
# a graph: every op applied to a tensor that requires grad becomes a node, and `tm.grad` walks the
# nodes back from the query loss to θ. `tinymeta.viz` draws that graph (`draw` with matplotlib,
# `to_dot` / `render` for Graphviz), one box per op with its output shape.
#
# Exact MAML computes the inner gradient with `create_graph=True`, so the backward pass that computes it
# is *recorded*: its ops (orange) join the graph, and the outer backward pass runs back through them.
# Differentiating a gradient once more is a Hessian-vector product: the (I − α∇²L(θ, D^tr)) factor of
# the meta-gradient. First-order MAML treats the inner gradient as a constant: nothing orange, and θ
# reaches the query loss through φ = θ + (a constant step) alone.

# %%
import gc
import tracemalloc

import _figures
import numpy as np

import tinymeta as tm
from tinymeta import nn, viz
from tinymeta.meta import MAML, iMAML

alpha = 0.01
small = nn.MLP([1, 4, 1])  # a network small enough to read every node of its graph
rng = np.random.default_rng(0)
amplitude, phase = rng.uniform(0.1, 5.0), rng.uniform(0, np.pi)
x = rng.uniform(-5, 5, (2, 5, 1))  # one task: K = 5 support points and 5 query points
y = amplitude * np.sin(x + phase)


def small_loss(params, xs, ys):
    return nn.mse_loss(small(params, xs), ys)


graphs, stats = {}, {}
for name, first_order in (("exact MAML", False), ("first-order MAML", True)):
    maml = MAML(small_loss, inner_lr=alpha, inner_steps=1, first_order=first_order, batched=False)
    theta = maml.init(small.init(seed=0))
    meta_loss = maml.meta_loss(theta, x[:1], y[:1], x[1:], y[1:])  # one task: data [T=1, K, 1]
    graphs[name] = (meta_loss, theta)
    stats[name] = viz.graph_stats(meta_loss, theta, constants=False)  # ops and parameters (data left out)
    print(f"{name:17s} {stats[name]}")

# the orange nodes are one recorded inner gradient: compute it by hand and count its ops
theta = graphs["exact MAML"][1]
by_hand = tm.grad(small_loss(theta, x[0], y[0]), list(theta.values()), create_graph=True)
recorded = viz.graph_stats(by_hand, theta)["backward"]
print(f"ops recorded by tm.grad(support loss, θ, create_graph=True) by hand: {recorded}")
assert stats["exact MAML"]["backward"] == recorded > 0
assert stats["first-order MAML"]["backward"] == 0
assert stats["first-order MAML"]["nodes"] < stats["exact MAML"]["nodes"]

# %% [markdown]
# Read the left picture from the top: the four parameters of θ (green); the support forward pass and
# the recorded backward pass (orange: `Transpose`, `MatMul`, `SumTo` are the backward of matmul and of
# the bias's broadcast, `Mul` the backward of relu's mask and of the squared error); φ = θ − α·g (`Mul`,
# `Sub`); then the query forward pass down to the meta-loss (bold; its last four ops stack the task's
# loss and average over tasks). In the right picture the inner loop left only `Add` nodes: θ + Δ.

# %%
plt = _figures.pyplot()
if plt is not None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 14), gridspec_kw={"width_ratios": [3, 2]})
    for ax, (name, (meta_loss, theta)) in zip(axes, graphs.items()):
        viz.draw(meta_loss, ax=ax, params=theta)
        ax.set_title(f"{name} (S = 1): {stats[name]['nodes']} nodes, {stats[name]['backward']} recorded", fontsize=9)
    _figures.save(fig, "04_maml_as_a_graph.png")
for name, (meta_loss, theta) in graphs.items():  # the same graphs as DOT source, for Graphviz
    path = viz.render(meta_loss, _figures.FOLDER / f"04_{name.split()[0]}_maml.dot", params=theta, constants=False)
    print(f"DOT source: {path}")

# %% [markdown]
# ## What the graph costs: S = 1, 2, 5, 10 inner steps
#
# Now the sinusoid setup of Finn et al. (2017): the 1-40-40-1 network, 25 tasks, K = 10 support and 10
# query points. For each algorithm, the graph behind the query loss (the one the outer backward pass
# walks, counted without data constants) and the peak memory of one meta-gradient (tracemalloc sees
# NumPy's allocations). Exact MAML keeps every inner step in its graph, so both grow linearly in S.
# First-order MAML's query loss reaches θ through θ + Δ only. iMAML (λ = 2, 5 CG steps) differentiates
# the query loss at φ* as a fresh leaf, and its Hessian-vector products too: neither depends on S.

# %%
net = nn.MLP([1, 40, 40, 1])
rng, T, K = np.random.default_rng(1), 25, 10
amplitude, phase = rng.uniform(0.1, 5.0, (2, T, 1, 1))
xb = rng.uniform(-5, 5, (T, 2 * K, 1))
yb = amplitude * np.sin(xb + phase)
xs, ys, xq, yq = xb[:, :K], yb[:, :K], xb[:, K:], yb[:, K:]


def make(name, steps, loss_fn):
    if name == "imaml":
        return iMAML(loss_fn, inner_lr=alpha, inner_steps=steps, lam=2.0, cg_steps=5)
    return MAML(loss_fn, inner_lr=alpha, inner_steps=steps, first_order=name == "fomaml")


def sinusoid_loss(params, x_, y_, seen=None):
    loss = nn.mse_loss(net(params, x_), y_)
    if seen is not None and x_ is xq:  # keep the query loss, to count the graph behind it
        seen.append(loss)
    return loss


def query_graph(name, steps):
    seen = []
    algo = make(name, steps, lambda params, x_, y_: sinusoid_loss(params, x_, y_, seen))
    algo.meta_grad(algo.init(net.init(seed=0)), xs, ys, xq, yq)
    return viz.graph_stats(seen[-1], constants=False)


def peak_mb(name, steps):  # peak memory allocated during one meta-gradient, in MB (2**20 bytes)
    algo = make(name, steps, sinusoid_loss)
    theta = algo.init(net.init(seed=0))
    gc.collect()
    tracemalloc.start()
    algo.meta_grad(theta, xs, ys, xq, yq)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


S, names = (1, 2, 5, 10), ("maml", "fomaml", "imaml")
table = {(n, s): (query_graph(n, s), peak_mb(n, s)) for n in names for s in S}
nodes = {n: [table[n, s][0]["nodes"] for s in S] for n in names}
mb = {n: [table[n, s][1] for s in S] for n in names}
print("  S | exact MAML: nodes, recorded, peak MB | first-order: nodes, MB | iMAML: nodes, MB")
for i, s in enumerate(S):
    recorded_s = table["maml", s][0]["backward"]
    print(f"{s:3d} | {nodes['maml'][i]:17d}, {recorded_s:8d}, {mb['maml'][i]:7.2f} | {nodes['fomaml'][i]:17d}, "
          f"{mb['fomaml'][i]:4.2f} | {nodes['imaml'][i]:11d}, {mb['imaml'][i]:4.2f}")  # fmt: skip

# %% [markdown]
# Exact MAML: every step adds the same ops (a support forward pass, its recorded backward, the update), so
# the node count is a + b·S exactly, and the peak memory grows by about the same amount per step (within
# 25 %: the first step starts from θ itself, a broadcast view, later steps from a φ of their own). The
# other two keep the same graph whatever S, and the same peak memory within 1 % (first-order MAML from
# S = 2 on, for the same reason as above).

# %%
per_step = [(nodes["maml"][i + 1] - nodes["maml"][i]) / (S[i + 1] - S[i]) for i in range(3)]
base = nodes["maml"][0] - per_step[0]
share = 10 * per_step[0] / nodes["maml"][3]  # the part of the S = 10 graph that the inner loop adds
print(f"exact MAML: nodes = {base:.0f} + {per_step[0]:.0f}·S, increments {per_step}, inner loop {share:.1%} at S = 10")
assert per_step[0] == per_step[1] == per_step[2] > 0 and nodes["maml"][3] == base + 10 * per_step[0] and share > 0.9
assert [table["maml", s][0]["backward"] for s in S] == [s * table["maml", 1][0]["backward"] for s in S]
mb_per_step = [(mb["maml"][i + 1] - mb["maml"][i]) / (S[i + 1] - S[i]) for i in range(3)]
print(f"exact MAML: peak memory per inner step {', '.join(f'{m:.2f}' for m in mb_per_step)} MB")
assert 0 < max(mb_per_step) < 1.25 * min(mb_per_step)
for n, flat in (("fomaml", mb["fomaml"][1:]), ("imaml", mb["imaml"])):
    print(f"{n}: nodes {nodes[n]}, peak MB {[round(m, 3) for m in mb[n]]}")
    assert len(set(nodes[n])) == 1 and max(flat) < 1.01 * min(flat) and mb[n][-1] < 0.25 * mb["maml"][-1]
