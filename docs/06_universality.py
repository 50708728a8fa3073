# %% [markdown]
# # 06 — Universality (the notes' questions 4 and 5)
#
# Finn & Levine (ICLR 2018, "Meta-Learning and Universality") ask whether learning only an initial θ and
# then running plain gradient descent costs expressive power compared with a black-box meta-learner (a
# network that reads the support set and outputs φ or a prediction). Their answer: with a deep enough
# network, MAML with one gradient step can approximate *any* learning procedure f(D^tr, x) a black-box
# learner can, provided that
#
# 1. the inner learning rate α is non-zero;
# 2. the loss's gradient does not lose information about the label (from the prediction and ∇_ŷ ℓ, the
#    label y can be recovered);
# 3. the support datapoints are unique (no x appears twice with different labels).
#
# **"Inductive bias without losing expressive power"** (question 4): nothing is lost (the theorem), and
# something is gained: the adaptation *is* gradient descent on the new task's loss, whatever θ is. So on
# any new task, however unlike the training tasks, more steps keep lowering its support loss (the last
# section) and more points keep informing it, where a black-box learner's output is whatever its weights
# happen to compute. The paper reports both: MAML
# extrapolated better than black-box learners to out-of-distribution tasks, and kept improving with steps
# (file 09 measures both against a conditional neural process).
#
# This file illustrates conditions 1-3 on tiny examples. It is not the proof (which builds a specific deep
# network); it shows *why* each condition is needed: the step φ = θ − α∇L is the only way the support
# labels reach φ.

# %%
import numpy as np

import tinymeta as tm
from tinymeta import meta, nn

rng = np.random.default_rng(0)
N, C = 1000, 5

# %% [markdown]
# ## Question 5: a gradient that keeps the label
# **MSE** L = (1/N) Σ (ŷ − y)² has ∇_ŷ L = (2/N)(ŷ − y), so y = ŷ − (N/2)∇. **Softmax cross-entropy**
# L = −(1/N) Σ log softmax(z)_y has ∇_z L = (softmax(z) − onehot(y))/N, so onehot(y) = softmax(z) − N∇,
# and y is the one entry where the gradient is negative. Both, checked on 1000 random labels:

# %%
y_hat, y = tm.tensor(rng.normal(size=(N, 1)), requires_grad=True), rng.uniform(-10, 10, (N, 1))
(g,) = tm.grad(nn.mse_loss(y_hat, y), y_hat)
err = np.abs(y_hat.numpy() - (N / 2) * g.numpy() - y).max()
print(f"MSE: labels recovered from the gradient, max error {err:.1e}")
assert err <= 1e-12

z, labels = tm.tensor(rng.normal(size=(N, C)), requires_grad=True), rng.integers(0, C, N)
(g,) = tm.grad(nn.cross_entropy(z, labels), z)
p = np.exp(z.numpy()) / np.exp(z.numpy()).sum(-1, keepdims=True)
onehot_err = np.abs(p - N * g.numpy() - np.eye(C)[labels]).max()
hits = (g.numpy().argmin(-1) == labels).sum()
print(f"cross-entropy: {hits}/{N} labels = argmin of the gradient; one-hot rebuilt to {onehot_err:.1e}")
assert hits == N and onehot_err <= 1e-12

# %% [markdown]
# ## A gradient that loses it
# **L1**, ℓ = |ŷ − y|, has gradient sign(ŷ − y): only the *side* of y survives. **A hinge** (here the
# ε-insensitive hinge of support-vector regression, ℓ = max(0, |ŷ − y| − ε)) has gradient exactly 0 for
# every label inside its margin. Different labels, identical gradients. (The two-class hinge max(0, 1 − yŷ)
# with y = ±1 still tells its two labels apart: at each ŷ tried, the gradients for y = 1 and y = −1 differ.
# What a margin hides is *which* label, among all the labels that fall inside it.)


# %%
def grad_at(loss, y_hat, y):  # ∇_ŷ loss(ŷ, y) at a single prediction
    yh = tm.tensor(y_hat, requires_grad=True)
    return tm.grad(loss(yh, y), yh)[0].item()


l1 = lambda yh, y: tm.abs(yh - y)  # noqa: E731
hinge = lambda yh, y: tm.relu(tm.abs(yh - y) - 1.0)  # ε = 1  # noqa: E731
g_l1 = [grad_at(l1, 0.0, y) for y in (1.0, 5.0)]
g_hinge = [grad_at(hinge, 0.5, y) + 0.0 for y in (0.0, 0.3, 0.9, 1.4)]  # + 0.0 prints −0.0 as 0.0
print(f"L1 at ŷ = 0: gradient {g_l1[0]} for y = 1 and {g_l1[1]} for y = 5")
print(f"hinge (ε = 1) at ŷ = 0.5: gradients {g_hinge} for y = 0, 0.3, 0.9, 1.4")
assert g_l1[0] == g_l1[1] == -1.0 and set(g_hinge) == {0.0}
two_class = lambda yh, y: tm.relu(1.0 - yh * y)  # noqa: E731
pairs = [(grad_at(two_class, yh, 1.0) + 0.0, grad_at(two_class, yh, -1.0) + 0.0) for yh in (-2.0, 0.0, 0.5, 2.0)]
print(f"two-class hinge at ŷ = −2, 0, 0.5, 2: gradients (y = 1, y = −1) {pairs}")
assert all(g_pos != g_neg for g_pos, g_neg in pairs)

# %% [markdown]
# ## One inner step writes the label into φ
# A linear model ŷ = θᵀx, one support point (x, y), MSE. One step:
# φ − θ = −α · 2(θᵀx − y) x, linear in y with a non-zero slope (α ≠ 0, x ≠ 0): so y = θᵀx + (φ − θ)ᵀx / (2α|x|²).
# 200 tasks at once through tinymeta's MAML, each with its own x and y:

# %%
d, T, alpha = 3, 200, 0.1


def linear_mse(params, x, y):  # θ [T, d], x [T, K, d], y [T, K] -> the T task losses
    pred = tm.sum(x * tm.expand_dims(params["w"], -2), axis=-1)
    return tm.mean((pred - y) ** 2, axis=-1)


theta = {"w": tm.tensor(rng.normal(size=d))}
maml = meta.MAML(linear_mse, inner_lr=alpha)
x, y = rng.normal(size=(T, 1, d)), rng.uniform(-5, 5, (T, 1))
phi = maml.adapt(maml.init(theta), x, y)["w"].numpy()
w, xs = theta["w"].numpy(), x[:, 0]
y_back = xs @ w + np.einsum("td,td->t", phi - w, xs) / (2 * alpha * (xs**2).sum(-1))
print(f"labels read back from φ alone (and θ, x): max error {np.abs(y_back - y[:, 0]).max():.1e}")
assert np.abs(y_back - y[:, 0]).max() <= 1e-12

# %% [markdown]
# The adapted model carries it: on the support input itself it predicts θᵀx + 2α|x|²(y − θᵀx), and with
# |x|² = 1/(2α) (here x = (1, 2, 0), α = 0.1) it predicts y exactly. With the L1 loss, φ is the same for
# y = 1 and y = 5 (both above θᵀx = 0), so no prediction of the adapted model can depend on which it was.

# %%
theta0 = {"w": tm.tensor(np.zeros(d))}
x1 = np.array([[[1.0, 2.0, 0.0]]])
l1_loss = lambda params, x, y: tm.mean(tm.abs(tm.sum(x * tm.expand_dims(params["w"], -2), -1) - y), -1)  # noqa: E731
maml_l1 = meta.MAML(l1_loss, inner_lr=alpha)
for label in (1.0, 5.0, -3.0):
    phi_mse = maml.adapt(maml.init(theta0), x1, [[label]])["w"].numpy()[0]
    phi_l1 = maml_l1.adapt(maml_l1.init(theta0), x1, [[label]])["w"].numpy()[0]
    print(f"y = {label:4}: MSE φ = {phi_mse}, prediction {phi_mse @ x1[0, 0]:.12f};  L1 φ = {phi_l1}")
    assert abs(phi_mse @ x1[0, 0] - label) <= 1e-12
phi_1, phi_5 = (maml_l1.adapt(maml_l1.init(theta0), x1, [[v]])["w"].numpy() for v in (1.0, 5.0))
assert np.array_equal(phi_1, phi_5)

# %% [markdown]
# ## Conditions 1 and 3: how many labels reach φ
# With MSE, φ is an affine function of the support labels: one step gives dφ/dy_k = (2α/K)·x_k. So φ can
# hold as many labels as that Jacobian's rank, and the two conditions are what keep it full. With α = 0 it
# is zero. With two support points at the same x its two columns coincide: the step sees only the sum of
# their errors, so labels (1, 5) and (2, 4) give the same φ. Below, dφ/dy by `tm.jacobian` through
# `MAML.adapt` for K = 2 points, checked against (2α/K)·x_k (≤ 1e-15), and its rank; then, at two distinct
# inputs, both labels read back from φ.

# %%
same_x, two_x = np.array([[[1.0, 2.0, 0.0]] * 2]), np.array([[[1.0, 2.0, 0.0], [0.0, 1.0, 1.0]]])
cases = {"α = 0.1, distinct x": (maml, two_x, 2), "α = 0.1, same x": (maml, same_x, 1)}
cases["α = 0, distinct x"] = (meta.MAML(linear_mse, inner_lr=0.0), two_x, 0)


def adapted_w(learner, inputs, labels):  # φ as a function of the K = 2 support labels
    return learner.adapt(learner.init(theta), inputs, tm.reshape(labels, (1, 2)))["w"][0]


for name, (learner, inputs, expected_rank) in cases.items():
    jac = tm.jacobian(lambda labels: adapted_w(learner, inputs, labels), tm.tensor([1.0, 5.0])).numpy()
    err = np.abs(jac - 2 * learner.inner_lr / 2 * inputs[0].T).max()  # against (2α/K)·x_k, K = 2
    rank = np.linalg.matrix_rank(jac, tol=1e-10)
    print(f"{name:20s} dφ/dy = {(np.round(jac, 3) + 0.0).tolist()}, |dφ/dy − (2α/K)x| = {err:.1e}, rank {rank}")
    assert err <= 1e-15 and rank == expected_rank
phis = [maml.adapt(maml.init(theta), same_x, [pair])["w"].numpy() for pair in ([1.0, 5.0], [2.0, 4.0])]
print(f"same x, labels (1, 5) and (2, 4): |φ difference| = {np.abs(phis[0] - phis[1]).max():.1e}")
step = maml.adapt(maml.init(theta), two_x, [[1.0, 5.0]])["w"].numpy()[0] - w  # = −α Σ_k (θᵀx_k − y_k) x_k
coef = np.linalg.lstsq(two_x[0].T, -step / alpha, rcond=None)[0]  # = (θᵀx_k − y_k) for k = 1, 2
print("distinct x, labels read back:", two_x[0] @ w - coef)
assert np.abs(phis[0] - phis[1]).max() <= 1e-12 and np.abs(two_x[0] @ w - coef - [1.0, 5.0]).max() <= 1e-12

# %% [markdown]
# ## Still gradient descent
# Whatever θ meta-training found, adaptation is gradient descent on the new task's loss. On a task far
# outside anything above (true weights (50, −40, 30), θ's entries are about 1), the support loss falls
# with every step (MAML.fine_tune, 10 support points), toward this model's best fit (here 0).

# %%
x_new = rng.normal(size=(1, 10, d))
y_new = x_new @ [50.0, -40.0, 30.0]
curve = [linear_mse(phi, x_new, y_new).item() for phi in maml.fine_tune(maml.init(theta), x_new, y_new, 100)]
print("support MSE after 0, 1, 10, 100 steps:", [float(f"{curve[s]:.3g}") for s in (0, 1, 10, 100)])
assert all(b < a for a, b in zip(curve, curve[1:])) and curve[100] < 1e-3 * curve[0]
