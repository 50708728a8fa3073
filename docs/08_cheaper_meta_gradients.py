# %% [markdown]
# # 08 — Cheaper meta-gradients: first-order MAML, Reptile, the last layer only, iMAML
#
# Exact MAML back-propagates through every inner step, dφ_S/dθ = Π_s (I − α∇²L(φ_s)): its backward pass keeps
# the whole inner trajectory, so memory grows with the number of steps S. The lecture's ways out: drop the
# Hessian terms (first-order MAML, Reptile), adapt the last layer only, or differentiate the *solution* of the
# inner problem (iMAML). Sinusoid tasks (25 per batch, K = 10 + 10) on Finn et al.'s 1-40-40-1 net, float64.

# %%
import timeit
import tracemalloc

import _figures
import numpy as np

import tinymeta as tm
from tinymeta import meta, nn, viz
from tinymeta.solvers import conjugate_gradient

rng = np.random.default_rng(0)
amplitude, phase, x = rng.uniform(0.1, 5, (25, 1, 1)), rng.uniform(0, np.pi, (25, 1, 1)), rng.uniform(-5, 5, (25, 20))
y = amplitude * np.sin(x[..., None] + phase)
batch = (x[:, :10, None], y[:, :10], x[:, 10:, None], y[:, 10:])  # support and query sets, [25, 10, 1] each
model = nn.MLP([1, 40, 40, 1])
theta = model.init(seed=0)


def loss(params, x, y):
    return nn.mse_loss(model(params, x), y)


def peak_mb(fn):  # the peak memory of fn() in MB (2**20 bytes; tracemalloc sees NumPy's arrays)
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


# %% [markdown]
# ## First-order MAML: dφ/dθ := I
#
# The meta-gradient becomes the query gradient at the adapted parameters, ∇L(φ, D^ts): checked against that
# gradient taken by hand at φ, and its direction against exact MAML's (α = 0.01: the dropped α H ∇L is small).

# %%
fomaml, maml = meta.make("fomaml", loss, inner_lr=0.01), meta.make("maml", loss, inner_lr=0.01)
(_, first), (_, exact) = fomaml.meta_grad(fomaml.init(theta), *batch), maml.meta_grad(maml.init(theta), *batch)
with tm.no_grad():
    phi = {n: tm.tensor(p.numpy(), requires_grad=True) for n, p in maml.adapt(maml.init(theta), *batch[:2]).items()}
by_hand = dict(zip(phi, tm.grad(tm.mean(loss(phi, *batch[2:])), list(phi.values()))))
mismatch = max(float(abs(first[n].numpy() - by_hand[n].numpy().sum(axis=0)).max()) for n in theta)
f, e = (np.concatenate([g[n].numpy().ravel() for n in theta]) for g in (first, exact))
cosine = f @ e / np.linalg.norm(f) / np.linalg.norm(e)
print(f"|FOMAML − ∇L(φ, D^ts) by hand| = {mismatch:.1e}; cosine(FOMAML, exact MAML) = {cosine:.4f}")
assert mismatch < 1e-12 and cosine > 0.9

# %% [markdown]
# ## Reptile, and why it works (Nichol et al. 2018, section 5)
#
# Reptile takes k SGD steps on minibatches of one task and moves θ toward the result: g_Reptile = (θ − φ_k)/α.
# For k = 2 (minibatch 1, then 2; g_i, H_i its gradient and Hessian at θ), φ_1 = θ − αg_1 and g_2(φ_1) =
# g_2 − αH_2g_1 + O(α²). So g_Reptile = g_1 + g_2(φ_1) = g_1 + g_2 − αH_2g_1; first-order MAML (support 1,
# query 2) gives g_2(φ_1) = g_2 − αH_2g_1; MAML gives (I − αH_1)g_2(φ_1) = g_2 − αH_2g_1 − αH_1g_2. Averaged
# over which minibatch comes first, with AvgGrad = E[g_i] and AvgGradInner = E[H_2g_1] = ½∇(g_1·g_2):
#
#     E[g_MAML] = AvgGrad − 2α·AvgGradInner,  E[g_FOMAML] = AvgGrad − α·AvgGradInner,
#     E[g_Reptile] = 2·AvgGrad − α·AvgGradInner  (+ O(α²); for k = 2, E[g_Reptile] = AvgGrad + E[g_FOMAML]).
#
# AvgGrad descends the task's expected loss; −AvgGradInner *raises* the inner product of two minibatches'
# gradients (what one minibatch teaches carries over to another). Relative to AvgGrad that term weighs 2α in
# MAML, α in first-order MAML, α/2 in Reptile. Checked on a 1-8-1 tanh net (25 parameters, one vector w) and
# two minibatches of 5 points: each expansion's error must fall 4× when α halves (O(α²)), and the weight of
# α·AvgGradInner, measured by projecting E[g] − (1 or 2)·AvgGrad onto it, must tend to 2, 1, 1 (error O(α)).

# %%
xs, w0 = rng.uniform(-5, 5, (2, 5, 1)), rng.normal(0, 0.5, 25)
ys = 2 * np.sin(xs[..., 0])  # two minibatches of the task y = 2 sin x


def mse(w, i):  # minibatch i's loss L_i(w)
    return tm.mean((tm.sum(tm.tanh(xs[i] * w[0:8] + w[8:16]) * w[16:24], axis=1) + w[24] - ys[i]) ** 2)


def g(w, i, create_graph=False):  # g_i(w) = ∇L_i(w), w an array or a Tensor
    w = w if isinstance(w, tm.Tensor) else tm.tensor(w, requires_grad=True)
    return tm.grad(mse(w, i), w, create_graph=create_graph)[0]


gs, w = [g(w0, 0).numpy(), g(w0, 1).numpy()], tm.tensor(w0, requires_grad=True)
avg_grad = (gs[0] + gs[1]) / 2
avg_inner = tm.grad(tm.sum(g(w, 0, True) * g(w, 1, True)), w)[0].numpy() / 2  # ½∇(g1·g2) = ½(H2 g1 + H1 g2)
norm2 = avg_inner @ avg_inner
theory = {"MAML": (1, 2), "FOMAML": (1, 1), "Reptile": (2, 1)}  # E[g] = a·AvgGrad − b·α·AvgGradInner
errors, weights = [], []
print("α       |E[g] − expansion|: MAML, FOMAML, Reptile | measured weight of α·AvgGradInner: MAML, FOMAML, Reptile")
for alpha in (0.008, 0.004, 0.002, 0.001):
    orders = []
    for i, j in ((0, 1), (1, 0)):  # minibatch i first, then j
        fomaml_ij = g(w0 - alpha * gs[i], j).numpy()  # g_j(φ_1)
        maml_ij = tm.grad(mse(w - alpha * g(w, i, True), j), w)[0].numpy()  # d L_j(θ − α g_i(θ)) / dθ
        orders.append({"MAML": maml_ij, "FOMAML": fomaml_ij, "Reptile": gs[i] + fomaml_ij})
    mean = {k: (orders[0][k] + orders[1][k]) / 2 for k in theory}  # E over which minibatch comes first
    errors.append([np.linalg.norm(mean[k] - a * avg_grad + b * alpha * avg_inner) for k, (a, b) in theory.items()])
    weights.append([(a * avg_grad - mean[k]) @ avg_inner / (alpha * norm2) for k, (a, _) in theory.items()])
    cells = "".join(f"{e:<11.2e}" for e in errors[-1])
    print(f"{alpha:.3f}   {cells:<42}| " + "  ".join(f"{x:.3f}" for x in weights[-1]))
ratios = np.array(errors[:-1]) / np.array(errors[1:])
print("error ratios as α halves:", "; ".join(" ".join(f"{r:.2f}" for r in row) for row in ratios))
assert np.all(abs(ratios[-1] - 4) < 0.3) and np.all(abs(np.array(weights[-1]) - [2, 1, 1]) < 0.05)

# %% [markdown]
# ## iMAML: the implicit function theorem (Rajeswaran et al. 2019)
#
# The inner problem is regularised: φ* = argmin L_tr(φ) + (λ/2)|φ − θ|². Its optimality condition
# ∇L_tr(φ*) + λ(φ* − θ) = 0, differentiated in θ, gives dφ*/dθ = (I + H/λ)⁻¹ (H = ∇²L_tr(φ*)) whatever
# path the solver took, so the meta-gradient u = (I + H/λ)⁻¹ ∇L_ts(φ*) solves a linear system: conjugate
# gradient with Hessian-vector products, no trajectory kept. On linear regression (d = 10 weights,
# 30 + 30 points) φ* has a closed form: H = XᵀX/n (tm.hessian), u by numpy.linalg.solve and by finite
# differences of θ ↦ L_ts(φ*(θ)); CG's error against its number of steps; and meta.iMAML, which never
# forms H (its CG multiplies by H with tm.hvp) and finds φ* by gradient descent with a line search,
# stopping once the proximal gradient is below 1e-10 (at most 300 steps here).

# %%
d, n, lam = 10, 30, 2.0
xr = rng.normal(size=(2, 1, n, d)) * np.logspace(0, 0.5, d)  # support and query inputs of one task
yr, theta_r = xr @ rng.normal(size=d) + 0.1 * rng.normal(size=(2, 1, n)), rng.normal(size=d)


def linear_loss(params, x, y):  # half the MSE of x·w, for w [d] or [T, d]
    w = params["w"] if params["w"].ndim == 1 else tm.expand_dims(params["w"], -2)
    return 0.5 * tm.mean((tm.sum(x * w, axis=-1) - y) ** 2, axis=-1)


def outer(t):  # (L_ts(φ*(θ)), ∇L_ts(φ*)), with φ* from (H + λI) φ* = Xᵀy/n + λθ
    residual = xr[1, 0] @ np.linalg.solve(H + lam * np.eye(d), xr[0, 0].T @ yr[0, 0] / n + lam * t) - yr[1, 0]
    return 0.5 * np.mean(residual**2), xr[1, 0].T @ residual / n


H = tm.hessian(lambda w: linear_loss({"w": w}, xr[0, 0], yr[0, 0]), tm.tensor(theta_r)).numpy()
A, b = np.eye(d) + H / lam, outer(theta_r)[1]
u = np.linalg.solve(A, b)
fd = np.array([(outer(theta_r + 1e-5 * e)[0] - outer(theta_r - 1e-5 * e)[0]) / 2e-5 for e in np.eye(d)])
fd_error = np.linalg.norm(fd - u) / np.linalg.norm(u)
print(f"cond(I + H/λ) = {np.linalg.cond(A):.1f}; |u − finite differences| / |u| = {fd_error:.1e}")
assert fd_error < 1e-7
cg_steps = [1, 2, 3, 4, 6, 8, 10]
cg_solutions = [conjugate_gradient(lambda v: [A @ v[0]], [b], k)[0] for k in cg_steps]
cg_errors = [np.linalg.norm(solution - u) / np.linalg.norm(u) for solution in cg_solutions]
print("CG steps: relative error", ", ".join(f"{k}: {err:.1e}" for k, err in zip(cg_steps, cg_errors)))
assert all(e2 < e1 for e1, e2 in zip(cg_errors, cg_errors[1:])) and cg_errors[-1] < 1e-8
step = 2 / (np.linalg.eigvalsh(H)[[0, -1]].sum() + 2 * lam)  # gradient descent's best fixed step for φ*
imaml = meta.iMAML(linear_loss, inner_lr=step, inner_steps=300, lam=lam, cg_steps=d)
relative = np.linalg.norm(imaml.meta_grad({"w": tm.tensor(theta_r)}, xr[0], yr[0], xr[1], yr[1])[1]["w"].numpy() - u)
print(f"meta.iMAML ({imaml.last_inner.iterations.max()} inner steps, {d} CG steps) against the exact u:", end=" ")
print(f"{relative / np.linalg.norm(u):.1e}")
assert relative < 1e-8 * np.linalg.norm(u)

# %% [markdown]
# ## What each costs, and the last layer only
#
# Peak memory of one meta-gradient on the sinusoid batch for S = 1, 5, 10 inner steps (the project's table,
# up to S = 20, is bench/results/maml.md). Exact MAML keeps every step for its backward pass; first-order
# MAML, Reptile and iMAML (5 CG steps) keep none. Adapting the last layer only (ANIL) keeps the exact
# gradient, but the inner gradients need no backward pass through the body and the second-order part is the
# head's: its memory still grows with S, more slowly. Its graph (the ops the backward pass walks from the
# meta-loss), memory and time (best of 15) against MAML's at S = 5.

# %%
memory, names, settings = {}, ("maml", "anil", "fomaml", "reptile", "imaml"), {"imaml": {"cg_steps": 5}}
settings["anil"] = {"head": model.head_names}
for name in names:
    for s in (1, 5, 10):
        learner = meta.make(name, loss, inner_lr=0.01, inner_steps=s, **settings.get(name, {}))
        memory[name, s] = peak_mb(lambda: learner.meta_grad(learner.init(theta), *batch))
    memory[name] = (memory[name, 10] - memory[name, 5]) / 5  # MB per extra inner step
    print(f"{name:8s}", *(f"S={s}: {memory[name, s]:5.2f} MB" for s in (1, 5, 10)), f"+{memory[name]:.3f} MB/step")
assert memory["maml"] > 1 and all(memory[k] < 0.02 * memory["maml"] for k in names[2:])
cost = {}
for name in ("maml", "anil"):
    learner = meta.make(name, loss, inner_lr=0.01, inner_steps=5, **settings.get(name, {}))
    params = learner.init(theta)
    ops = viz.graph_stats(learner.meta_loss(params, *batch), params)["ops"]  # the ops from the meta-loss back to θ
    cost[name] = ops, 1e3 * min(timeit.repeat(lambda: learner.meta_grad(params, *batch), number=1, repeat=15))
    print(f"{name}, S = 5: {cost[name][0]} ops, {memory[name, 5]:.2f} MB, {cost[name][1]:.2f} ms per meta-gradient")
assert cost["anil"][0] < cost["maml"][0] and cost["anil"][1] < cost["maml"][1] and 0.1 < memory["anil"] < memory["maml"]
plt = _figures.pyplot()
if plt is not None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    left.semilogy(cg_steps, cg_errors, "o-")
    left.set(xlabel="CG steps", ylabel="relative error of u", title=f"iMAML's implicit gradient, d = {d}")
    for name in names:
        right.plot((1, 5, 10), [memory[name, s] for s in (1, 5, 10)], "o-", label=name)
    right.set(xlabel="inner steps S", ylabel="peak MB", title="memory of one meta-gradient")
    right.legend(loc="upper left", fontsize=8)
    _figures.save(fig, "08_cheaper_meta_gradients.png")
