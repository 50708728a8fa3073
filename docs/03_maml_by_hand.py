# %% [markdown]
# # 03 — MAML by hand
#
# MAML (Finn et al. 2017) adapts θ to each task i by gradient steps on its support (training) set, then
# moves θ so that the **adapted** parameters do well on the task's query (test) set:
#
#     φ_i = θ − α ∇L_i(θ)  (inner loop, here 2 steps)      θ ← θ − β ∇_θ (1/T) Σ_i L'_i(φ_i)  (outer loop)
#
# On quadratic tasks every quantity has a closed form, so each line can be checked exactly. Task i has the
# support loss L_i(θ) = ½ θᵀA_iθ − b_iᵀθ and the query loss L'_i(θ) = ½ θᵀC_iθ − d_iᵀθ in 2 dimensions.
#
# **The closed form.** ∇L_i(φ) = A_iφ − b_i, so a step φ ↦ φ − α(A_iφ − b_i) = (I − αA_i)φ + αb_i has the
# Jacobian (I − αA_i): it is linear in φ. Two steps give dφ₂/dθ = (I − αA_i)², and by the chain rule
# (A_i symmetric) the meta-gradient is ∇_θ L'_i(φ₂) = (I − αA_i)² (C_iφ₂ − d_i). The factor (I − αA_i)
# holds the Hessian A_i of the support loss: that is the "back-propagation through second derivatives".

# %%
import _figures
import numpy as np

import tinymeta as tm
from tinymeta.meta import MAML
from tinymeta.testing import gradcheck


def quadratic_loss(params, a, b):
    """½ θᵀAθ − bᵀθ, one loss per task for A [T, n, n] and b [T, n] (or one task's A [n, n], b [n]).

    MAML's loss_fn(params, x, y) returns one loss per task: here the task's "data" x is A, and y is b."""
    theta = params["theta"]
    a_theta = tm.squeeze(tm.matmul(a, tm.expand_dims(theta, -1)), -1)
    return 0.5 * tm.sum(theta * a_theta, axis=-1) - tm.sum(b * theta, axis=-1)


rng = np.random.default_rng(0)
T, n, alpha = 4, 2, 0.3
raw = rng.standard_normal((2, T, n, n))
A, C = raw @ np.swapaxes(raw, -1, -2) / n + 0.5 * np.eye(n)  # symmetric positive definite, one per task
b, d = rng.standard_normal((2, T, n))
theta0, eye = np.array([1.0, -0.5]), np.eye(n)


def adapt(theta, i, steps=2):  # the inner loop, written with tm.grad(create_graph=True)
    phi = theta
    for _ in range(steps):
        (g,) = tm.grad(quadratic_loss({"theta": phi}, A[i], b[i]), phi, create_graph=True)
        phi = phi - alpha * g
    return phi


def closed_form(i):  # (meta-gradient, query loss) of task i after two steps, in NumPy
    phi = theta0
    for _ in range(2):
        phi = phi - alpha * (A[i] @ phi - b[i])
    step = eye - alpha * A[i]
    return step @ step @ (C[i] @ phi - d[i]), 0.5 * phi @ C[i] @ phi - d[i] @ phi, phi


# %% [markdown]
# ## One task: by hand, closed form, finite differences, `meta.MAML`
# The four must agree: to rounding (~1e-16) for the exact ones, assert ≤ 1e-12. Central differences of the
# whole two-step procedure (ε = 1e-6: error ~ε² + 1e-16/ε ~ 1e-10) agree to ≤ 1e-6, and so does
# `gradcheck` (its tolerance 1e-6 + 1e-5·|value|).

# %%
theta = tm.tensor(theta0, requires_grad=True)
(by_hand,) = tm.grad(quadratic_loss({"theta": adapt(theta, 0)}, C[0], d[0]), theta)
maml = MAML(quadratic_loss, inner_lr=alpha, inner_steps=2)
_, grads = maml.meta_grad(maml.init({"theta": tm.tensor(theta0)}), A[:1], b[:1], C[:1], d[:1])
print(f"meta-gradient by hand {by_hand.numpy()}, closed form (I − αA)²(Cφ₂ − d) {closed_form(0)[0]}")
print(f"|by hand − closed form| = {np.abs(by_hand.numpy() - closed_form(0)[0]).max():.1e},", end=" ")
print(f"|MAML.meta_grad − by hand| = {np.abs(grads['theta'].numpy() - by_hand.numpy()).max():.1e}")
assert np.abs(by_hand.numpy() - closed_form(0)[0]).max() <= 1e-12
assert np.abs(grads["theta"].numpy() - by_hand.numpy()).max() <= 1e-12


def meta_objective(t):  # θ ↦ L'(φ₂(θ)), the whole procedure
    return quadratic_loss({"theta": adapt(t, 0)}, C[0], d[0])


at = lambda th: meta_objective(tm.tensor(th, requires_grad=True)).item()  # noqa: E731
fd = np.array([(at(theta0 + e) - at(theta0 - e)) / 2e-6 for e in 1e-6 * eye])
print(f"central differences (ε = 1e-6) {fd}: max |by hand − differences| {np.abs(by_hand.numpy() - fd).max():.1e}")
print("tinymeta.testing.gradcheck of θ ↦ L'(φ₂(θ)):", gradcheck(meta_objective, [theta0]))
assert np.abs(by_hand.numpy() - fd).max() <= 1e-6

# %% [markdown]
# ## First-order MAML drops one Hessian-vector product
# With one step the exact meta-gradient is (I − αA)(Cθ' − d); first-order MAML (FOMAML) takes dφ/dθ := I
# and keeps only g = Cθ' − d. Their difference is −α A g = −α·(Hessian of the support loss)·g: one HVP,
# which `tm.hvp` computes without forming A (file 02). Exact identity: assert ≤ 1e-12.

# %%
theta_1 = theta0 - alpha * (A[0] @ theta0 - b[0])
query_grad = C[0] @ theta_1 - d[0]  # Cθ' − d
meta = [MAML(quadratic_loss, inner_lr=alpha, first_order=fo) for fo in (False, True)]
exact, first = (m.meta_grad(m.init({"theta": tm.tensor(theta0)}), A[:1], b[:1], C[:1], d[:1])[1]["theta"] for m in meta)
_, hv = tm.hvp(lambda t: quadratic_loss({"theta": t}, A[0], b[0]), tm.tensor(theta0), tm.tensor(query_grad))
exact, first, hv = exact.numpy(), first.numpy(), hv.numpy()
print(f"MAML {exact}, FOMAML {first} (Cθ' − d = {query_grad}), H v {hv}, −α H v {-alpha * hv}")
print(f"|(MAML − FOMAML) − (−α H v)| = {np.abs(exact - first + alpha * hv).max():.1e}")
assert np.abs(first - query_grad).max() <= 1e-12 and np.abs(exact - first + alpha * hv).max() <= 1e-12

# %% [markdown]
# ## When first order points the wrong way: ±4
# g(x) = x² as both support and query loss, x₀ = 2, α = 1. The step gives x' = x − α·2x = −x, so the
# meta-objective is g(x') = x² and its true gradient is 2x₀ = +4: dx'/dx = 1 − α g''(x) = 1 − 2 = −1.
# First order pretends dx'/dx = +1 and returns g'(x') = 2x' = −4. With the outer step β = 0.1, MAML moves x₀
# to 1.6 (meta-loss 4 → 2.56); FOMAML moves it to 2.4 (meta-loss 4 → 5.76): uphill. The Hessian term is not
# a small correction whenever α·g'' is not small.

# %%
x = tm.tensor(2.0, requires_grad=True)
(gx,) = tm.grad(x**2, x, create_graph=True)
x_prime = x - 1.0 * gx
(true_grad,), (first_order,) = tm.grad(x_prime**2, x, create_graph=True), tm.grad(x_prime**2, x_prime)
square = lambda p, ones, _: p["x"] ** 2 * tm.sum(ones, axis=-1)  # noqa: E731  g per task (data: ones)
lib = [MAML(square, inner_lr=1.0, first_order=fo) for fo in (False, True)]
lib = [m.meta_grad(m.init({"x": tm.tensor(2.0)}), [[1.0]], [[0.0]], [[1.0]], [[0.0]])[1]["x"].item() for m in lib]
after = {name: (2.0 - 0.1 * gr) ** 2 for name, gr in (("MAML", true_grad.item()), ("FOMAML", first_order.item()))}
print(f"x' = {x_prime.item()}; by hand: true {true_grad.item()}, first order {first_order.item()}; meta.MAML: {lib}")
print(f"meta-loss after one outer step of 0.1: MAML {after['MAML']:.2f}, FOMAML {after['FOMAML']:.2f} (before: 4)")
assert (true_grad.item(), first_order.item()) == (4.0, -4.0) and lib == [4.0, -4.0]
assert abs(after["MAML"] - 2.56) <= 1e-12 and abs(after["FOMAML"] - 5.76) <= 1e-12

# %% [markdown]
# ## The notes' question 2: one meta-update per task, or per batch of tasks?
# Per **batch**. MAML samples T tasks, adapts each one separately (its own φ_i from the same θ), averages
# the query losses and makes **one** update of θ with the gradient of that mean, which is the mean of the
# T single-task meta-gradients (Finn et al. 2017, Algorithm 1, steps 3–8, meta-batch 25 for the sinusoids;
# the paper writes a sum over tasks, tinymeta the mean: the same direction, β rescaled by T).
# Below T = 4: MAML's batched meta-gradient against the mean of the 4 single-task ones and of the 4 closed
# forms (exact, assert ≤ 1e-12).
#
# ## Question 3: is the loss that updates θ a similarity between vectors?
# No. The meta-loss is each task's **own task loss** (here L'_i; MSE or cross-entropy in practice) of its
# adapted parameters φ_i on its **query set**, averaged over the batch: it compares φ_i's predictions with
# the query labels. Below, the value MAML returns equals the mean of the 4 query losses computed by hand from
# the closed-form φ_i (assert ≤ 1e-12), and one outer step θ ← θ − β·(batch meta-gradient), β = 0.1, lowers
# that mean (asserted).
#
# On a quadratic the query loss happens to be a squared distance: L'_i(φ) = ½(φ − φ*_i)ᵀC_i(φ − φ*_i) minus
# a constant, with φ*_i = C_i⁻¹d_i the task's query optimum (checked below, ≤ 1e-12). But the distance is
# weighted by the task's own curvature C_i, which a similarity between vectors such as |φ_i − φ*_i|² is not,
# and file 05 shows that the two objectives pick different θ. For a network's loss there is not even a single
# optimum to measure a distance from.

# %%
loss, batch = maml.meta_grad(maml.init({"theta": tm.tensor(theta0)}), A, b, C, d)
batch = batch["theta"].numpy()
singles = [maml.meta_grad(maml.init({"theta": tm.tensor(theta0)}), A[[i]], b[[i]], C[[i]], d[[i]]) for i in range(T)]
mean_single = np.mean([g["theta"].numpy() for _, g in singles], axis=0)
mean_closed = np.mean([closed_form(i)[0] for i in range(T)], axis=0)
query_losses = [closed_form(i)[1] for i in range(T)]
print(f"batch meta-gradient {batch}; mean of the {T} single-task ones {mean_single}")
print(f"|batch − mean of singles| = {np.abs(batch - mean_single).max():.1e},", end=" ")
print(f"|batch − mean of closed forms| = {np.abs(batch - mean_closed).max():.1e}")
print(f"query losses L'_i(φ_i) by hand {np.round(query_losses, 6)}, mean {np.mean(query_losses):.12f}", end=" ")
print(f"| MAML's meta-loss {loss:.12f}")
assert np.abs(batch - mean_single).max() <= 1e-12 and np.abs(batch - mean_closed).max() <= 1e-12
assert abs(loss - np.mean(query_losses)) <= 1e-12
optimum = np.linalg.solve(C, d[..., None])[..., 0]  # each task's query optimum φ*_i = C_i⁻¹ d_i
gap = [closed_form(i)[2] - optimum[i] for i in range(T)]
as_distance = [0.5 * g @ C[i] @ g - 0.5 * optimum[i] @ C[i] @ optimum[i] for i, g in enumerate(gap)]
distance_err = np.abs(np.subtract(as_distance, query_losses)).max()
print(f"L'_i(φ_i) against ½(φ_i − φ*_i)ᵀC_i(φ_i − φ*_i) − ½φ*_iᵀC_iφ*_i: max difference {distance_err:.1e}")
assert distance_err <= 1e-12
theta_next = theta0 - 0.1 * batch
loss_next = maml.meta_grad(maml.init({"theta": tm.tensor(theta_next)}), A, b, C, d)[0]
print(f"one outer step per batch: θ {theta0} -> {theta_next}, meta-loss {loss:.6f} -> {loss_next:.6f}")
assert loss_next < loss

# %% [markdown]
# The figure: the ±4 example. The meta-objective J(x₀) = g(x'(x₀)) = x₀² has slope +4 at x₀ = 2 (MAML steps
# towards 0); FOMAML uses the slope of g at x' = −2, which is −4, and steps away.

# %%
plt = _figures.pyplot()
if plt is not None:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    xs = np.linspace(-3, 3, 200)
    ax.plot(xs, xs**2, color="grey", label="g(x) = x², and also J(x₀) = g(x₀ − g'(x₀)) = x₀²")
    ax.plot([2, -2], [4, 4], "ko")
    ax.annotate("x₀ = 2", (2, 4), (2.1, 3.0)), ax.annotate("x' = −2", (-2, 4), (-2.9, 3.0))
    ax.plot(xs[xs < -1], 4 - 4 * (xs[xs < -1] + 2), "tab:orange", label="slope g'(x') = −4 (first order)")
    ax.plot(xs[xs > 1], 4 + 4 * (xs[xs > 1] - 2), "tab:red", label="slope dJ/dx₀ = +4 (MAML)")
    for step, height, color in ((-0.4, 6.6, "tab:red"), (0.4, 5.6, "tab:orange")):  # −β·slope, β = 0.1
        ax.annotate("", (2 + step, height), (2, height), arrowprops=dict(color=color, width=1.5, headwidth=7))
    ax.set(xlabel="x", ylim=(-0.5, 9.5), title="outer step from x₀ = 2: MAML ← , FOMAML →")
    ax.legend(fontsize=8, loc="upper center")
    _figures.save(fig, "03_maml_by_hand.png")
