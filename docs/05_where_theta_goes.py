# %% [markdown]
# # 05 — Where θ goes (the notes' questions 1 and 3)
#
# *"Is φ the result of optimising θ on the task's training set, and what is θ's direction of movement?"*
#
# Four 2-D quadratic tasks, L_i(θ) = ½ (θ − c_i)ᵀ A_i (θ − c_i), each with its own centre c_i and its own
# curvature A_i (a long, thin valley turned its own way). A quadratic is a linear regression with a sum
# of squares: A_i = M_iᵀ M_i, so task i's "data" are the rows of M_i (inputs) and M_i c_i (targets).
# To keep one function per task, the support loss and the query loss are the same here (x_query = x_support).
#
# We train four algorithms from the same start and compare where θ ends:
# joint training (α = 0: minimise Σ_i L_i(θ)), MAML (minimise Σ_i L_i(φ_i), φ_i = θ − α∇L_i(θ)),
# first-order MAML and Reptile (5 inner steps), and a fifth objective that question 3 asks about (below).
# On quadratics each endpoint has a closed form.

# %%
import _figures
import numpy as np

import tinymeta as tm
from tinymeta import meta, nn

T, alpha, k = 4, 0.25, 5
c = np.array([[-2.0, 1.0], [2.0, 2.0], [1.5, -2.0], [-1.0, -1.5]])  # the centres c_i
angles, eigs = [0.3, 1.2, -0.6, 2.0], [(3.5, 0.3), (0.5, 2.0), (2.5, 0.8), (0.4, 3.0)]
R = [np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) for a in angles]
M = np.array([np.diag(np.sqrt(e)) @ r.T for e, r in zip(eigs, R)])  # A_i = M_iᵀ M_i
A = np.einsum("tki,tkj->tij", M, M)
xs, ys = M, np.einsum("tkj,tj->tk", M, c)  # [T, K=2, 2] inputs and [T, 2] targets


def loss_fn(params, x, y):  # ½ Σ_k (x_k·θ − y_k)²: task-batched θ [T, 2] gives the T task losses
    pred = tm.sum(x * tm.expand_dims(params["theta"], -2), axis=-1)
    return 0.5 * tm.sum((pred - y) ** 2, axis=-1)


eye, B = np.eye(2), np.eye(2) - alpha * A  # B_i = I − αA_i: one step maps θ − c_i to B_i(θ − c_i)
Bk = np.array([np.linalg.matrix_power(b, k) for b in B])


def fixed_point(W):  # θ solving Σ_i W_i (θ − c_i) = 0
    return np.linalg.solve(W.sum(0), np.einsum("tij,tj->i", W, c))


# %% [markdown]
# The closed forms (set each update's mean direction to zero):
# joint Σ A_i(θ − c_i) = 0; MAML's gradient is ∇_θ L_i(φ_i) = B_i A_i B_i (θ − c_i); first-order MAML uses
# ∇L_i(φ_i) = A_i B_i (θ − c_i) alone; Reptile moves θ toward φ̃_i = θ − (I − B_i^k)(θ − c_i).
#
# **Question 3: is the meta-loss a similarity between vectors?** Here it looks like one: L_i(φ) =
# ½(φ − c_i)ᵀA_i(φ − c_i) is a squared distance from φ_i to the task's optimum c_i, but weighted by the
# task's own curvature A_i: a miss along a steep direction costs more than along a flat one. A plain
# similarity, Σ_i ½|φ_i − c_i|² with the same adapted φ_i, weights every direction alike; its gradient is
# B_i B_i (θ − c_i). It is MAML with another query set (inputs I, targets c_i), so the same code trains it.
#
# Each is trained with tinymeta's own algorithm and plain gradient descent (step 1/L, L the largest
# eigenvalue of the averaged linear map), then compared with its closed form.

# %%
algorithms = {
    "joint (α=0)": (meta.MAML(loss_fn, inner_lr=0.0), A),
    "MAML": (meta.MAML(loss_fn, inner_lr=alpha), B @ A @ B),
    "first-order MAML": (meta.MAML(loss_fn, inner_lr=alpha, first_order=True), A @ B),
    "Reptile (5 steps)": (meta.Reptile(loss_fn, inner_lr=alpha, inner_steps=k), eye - Bk),
    "similarity |φ−c|²": (meta.MAML(loss_fn, inner_lr=alpha), B @ B),
}
query = {name: (xs, ys) for name in algorithms} | {"similarity |φ−c|²": (np.broadcast_to(eye, (T, 2, 2)), c)}


def losses(theta):  # each L_i(θ) before adaptation, and each L_i(φ_i) after one step of α
    phi = theta - alpha * np.einsum("tij,tj->ti", A, theta - c)
    quad = lambda p: 0.5 * np.einsum("ti,tij,tj->t", p - c, A, p - c)  # noqa: E731
    return quad(theta), quad(phi)


ends = {}
print(f"{'algorithm':<18} {'trained θ':>20} {'|θ − closed form|':>18} {'pre-adapt':>10} {'post-adapt':>10}")
for name, (algo, W) in algorithms.items():
    params = algo.init({"theta": tm.tensor([0.0, 0.0])})
    opt = nn.SGD(lr=1.0 / np.linalg.eigvals(W.mean(0)).real.max())
    state = opt.init(params)
    for _ in range(300):
        _, grads = algo.meta_grad(params, xs, ys, *query[name])
        params, state = opt.step(params, grads, state)
    theta = params["theta"].numpy()
    err = np.abs(theta - fixed_point(W)).max()
    pre, post = losses(theta)
    ends[name] = (theta, pre.mean(), post.mean(), post)
    print(f"{name:<18} {np.array2string(theta, precision=4):>20} {err:18.1e} {pre.mean():10.4f} {post.mean():10.4f}")
    assert err <= 1e-6, (name, err)

pre = {n: v[1] for n, v in ends.items() if n != "similarity |φ−c|²"}  # the four algorithms
post = {n: v[2] for n, v in ends.items()}
assert min(post, key=post.get) == "MAML" and min(pre, key=pre.get) == "joint (α=0)"
assert max(pre, key=pre.get) == "MAML"
theta_sim, theta_maml = ends["similarity |φ−c|²"][0], ends["MAML"][0]
gap = np.linalg.norm(theta_sim - theta_maml)
print(f"question 3: θ minimising the similarity {np.round(theta_sim, 2)}, MAML's {np.round(theta_maml, 2)}:", end=" ")
print(f"{gap:.2f} apart; mean L_i(φ_i) {post['similarity |φ−c|²']:.4f} against MAML's {post['MAML']:.4f}")
assert gap > 0.5 and post["similarity |φ−c|²"] > post["MAML"] + 0.05
for name in ("joint (α=0)", "MAML"):
    print(f"per-task L_i(φ_i) from the {name} θ: {np.round(ends[name][3], 4)}")
assert ends["MAML"][3].max() < ends["joint (α=0)"][3].max() and (ends["MAML"][3] > ends["joint (α=0)"][3]).sum() == 2

# %% [markdown]
# MAML's θ is the worst of the four algorithms' *before* adaptation and the best *after* one step: it is not
# where the tasks are good, it is where one step goes well for them. Joint training is the opposite. MAML
# minimises the *sum*: its worst task after the step is far better than joint training's (1.06 against 3.93),
# and it pays for that on the two easiest tasks, which end worse than from the joint θ (0.86, 0.54 against
# 0.54, 0.14).
#
# So the answer to question 3 is no, even where the loss is a distance. The plain similarity's θ is far from
# MAML's, and its adapted parameters do worse on the tasks' own losses: it scores φ_i by the wrong metric,
# blind to A_i. Beyond quadratics the meta-loss is not a function of a distance to anything: a network's
# query loss (MSE, cross-entropy) has no single optimum c_i to measure from (permuting hidden units alone
# gives many) and is defined only through the query data, by comparing predictions with labels.
#
# **φ_i is θ after a gradient step on task i's training (support) loss**: φ_i = θ − α∇L_i(θ) (with S inner
# steps, θ after S such steps). Not an optimisation to convergence, and not on the query set: the query
# loss only *scores* φ_i.
# tinymeta's `MAML.adapt` gives exactly that:

# %%
maml = algorithms["MAML"][0]
theta_m = ends["MAML"][0]
params = maml.init({"theta": tm.tensor(theta_m)})
phi = maml.adapt(params, xs, ys)["theta"].numpy()
by_hand = theta_m - alpha * np.einsum("tij,tj->ti", A, theta_m - c)
print("φ_i from MAML:\n", np.round(phi, 4), "\nmax |MAML.adapt − (θ − α A_i(θ − c_i))| =", np.abs(phi - by_hand).max())
assert np.abs(phi - by_hand).max() <= 1e-12

# %% [markdown]
# **θ's direction of movement** is minus the meta-gradient (1/T) Σ_i (I − αA_i) ∇L_i^ts(φ_i): each task's
# gradient *at its adapted point*, bent by the Jacobian of the step. So θ moves toward a point from which
# one step lands well for every task, not toward the joint minimiser: there the meta-gradient is far from
# zero, and MAML leaves it. (Σ B_iA_iB_i is positive definite here, so MAML's endpoint is its only zero.)

# %%
for name in ("joint (α=0)", "MAML"):
    theta = ends[name][0]
    _, grads = maml.meta_grad(maml.init({"theta": tm.tensor(theta)}), xs, ys, xs, ys)
    phi_i = theta - alpha * np.einsum("tij,tj->ti", A, theta - c)
    formula = np.einsum("tij,tjk,tk->i", B, A, phi_i - c) / T  # (1/T) Σ (I − αA_i) A_i (φ_i − c_i)
    g = grads["theta"].numpy()
    print(f"meta-gradient at the {name} endpoint: {g}, formula {formula}, |difference| {np.abs(g - formula).max():.1e}")
    assert np.abs(g - formula).max() <= 1e-12
    assert (np.linalg.norm(g) <= 1e-12) == (name == "MAML")  # zero at MAML's endpoint only
print("eigenvalues of Σ B_iA_iB_i:", np.linalg.eigvalsh((B @ A @ B).sum(0)))
assert np.linalg.eigvalsh((B @ A @ B).sum(0)).min() > 0

# %% [markdown]
# The picture: each task's valley (one colour each, its centre a cross), the five endpoints, and the
# step θ → φ_i of each task from MAML's θ (solid) and from the joint θ (dotted).

# %%
plt = _figures.pyplot()
if plt is not None:
    fig, ax = plt.subplots(figsize=(6.2, 5.2))
    g1, g2 = np.meshgrid(np.linspace(-3.5, 3.5, 200), np.linspace(-3.5, 3.5, 200))
    grid = np.stack([g1, g2], -1)
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:purple"]
    for i in range(T):
        d = grid - c[i]
        ax.contour(g1, g2, 0.5 * np.einsum("...i,ij,...j->...", d, A[i], d), [0.25, 1, 2.5], colors=colours[i])
        ax.plot(*c[i], "x", color=colours[i], ms=9, mew=2)
    for name, marker in zip(ends, "sD^vP"):
        ax.plot(*ends[name][0], marker, color="k", ms=8, label=f"{name}: post-adapt {ends[name][2]:.3f}")
    for name, style in (("MAML", "-"), ("joint (α=0)", ":")):
        theta = ends[name][0]
        for i, p in enumerate(theta - alpha * np.einsum("tij,tj->ti", A, theta - c)):
            ax.annotate("", p, theta, arrowprops=dict(arrowstyle="->", color=colours[i], ls=style))
    ax.set(xlabel="θ₁", ylabel="θ₂", aspect="equal", title=f"Where θ goes (α = {alpha}): arrows θ → φ_i")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)
    _figures.save(fig, "05_where_theta_goes.png")
