# %% [markdown]
# # 02 — Second derivatives and Hessian-vector products
#
# MAML's meta-gradient for one inner step is (I − α∇²L_tr(θ)) ∇L_ts(φ): a Hessian **times a vector**. This
# file shows how an engine whose gradients are differentiable (file 01) computes it without ever forming
# the Hessian, and what that saves.
#
# ## Differentiate a gradient
# With `create_graph=True` the gradient f'(x) is itself a recorded function of x, so `tm.grad` of it is
# f''(x). For f(x) = x³ at x = 3: f' = 3x² = 27, f'' = 6x = 18, and once more f''' = 6.

# %%
import time
import tracemalloc

import _figures
import numpy as np

import tinymeta as tm

x = tm.tensor(3.0, requires_grad=True)
(d1,) = tm.grad(x**3, x, create_graph=True)
(d2,) = tm.grad(d1, x, create_graph=True)
(d3,) = tm.grad(d2, x)
print(f"f(x) = x³ at x = 3: f' = {d1.item()}, f'' = {d2.item()}, f''' = {d3.item()}")
assert (d1.item(), d2.item(), d3.item()) == (27.0, 18.0, 6.0)

# %% [markdown]
# ## H v is the gradient of ⟨∇f, v⟩ (Pearlmutter 1994)
# For a function of a vector, ∂/∂x_i Σ_j v_j ∂f/∂x_j = Σ_j (∂²f/∂x_i∂x_j) v_j = (H v)_i. So: one gradient,
# recorded; a dot product with v; one more gradient. Below, f is the mean squared error of a 3-10-1 tanh
# network on 20 points as a function of its 51 parameters in one flat vector w, and we compare H v with the
# explicit 51 × 51 Hessian (`tm.hessian`, one backward pass per row). Same math, different rounding
# order: agreement to ~1e-15 relative; assert ≤ 1e-10.

# %%
rng = np.random.default_rng(0)
X, Y = rng.standard_normal((20, 3)), rng.standard_normal((20, 1))


def mlp_loss(w):  # w = [W1 (3×10), b1 (10), W2 (10×1), b2 (1)]: 51 numbers
    W1, b1, W2, b2 = tm.reshape(w[:30], (3, 10)), w[30:40], tm.reshape(w[40:50], (10, 1)), w[50:]
    return tm.mean((tm.matmul(tm.tanh(tm.matmul(X, W1) + b1), W2) + b2 - Y) ** 2)


w0, v = rng.standard_normal(51), rng.standard_normal(51)
w = tm.tensor(w0, requires_grad=True)
(g,) = tm.grad(mlp_loss(w), w, create_graph=True)  # ∇f(w), recorded
(hv,) = tm.grad(tm.sum(g * tm.tensor(v)), w)  # ∇⟨∇f, v⟩ = H v
H = tm.hessian(mlp_loss, tm.tensor(w0)).numpy()
_, hv_tm = tm.hvp(mlp_loss, tm.tensor(w0), tm.tensor(v))
err, err_tm = np.abs(hv.numpy() - H @ v).max(), np.abs(hv_tm.numpy() - H @ v).max()
print(f"|H v| = {np.linalg.norm(H @ v):.4f}; max |∇⟨∇f, v⟩ - H v| = {err:.1e}; max |tm.hvp - H v| = {err_tm:.1e}")
print(f"H is {H.shape}, symmetric to {np.abs(H - H.T).max():.1e}")
assert err <= 1e-10 and err_tm <= 1e-10 and np.abs(H - H.T).max() <= 1e-12

# %% [markdown]
# ## Why it costs a few gradients and O(n) memory
# An HVP is one forward pass, one backward pass that records itself (about twice the ops of a plain
# backward) and one backward pass through that record: a small constant number of gradients, whatever n.
# It keeps the graph's arrays, each the size of a forward-pass array: O(n). The explicit Hessian needs n
# backward passes (one per row) and n² floats. Measured on f(x) = log Σ_j exp(x_j) (the core of the
# cross-entropy; its Hessian diag(p) − p pᵀ, p = softmax(x), is dense, and H v = p∘v − p (p·v) is checked
# at every n; so is the Hessian, against diag(p) − p pᵀ). Time: the best of 5 runs (of 3, or 1, for the
# Hessian). Memory: tracemalloc's peak of new allocations, deterministic for a given computation.
# Asserted on memory: the HVP's peak stays under 10 n floats for n ≥ 1000 (measured ~7n); from n = 100 to
# 1000 the Hessian's peak grows more than 10^1.5 ≈ 32× (halfway, on a log scale, between linear growth, 10×,
# and quadratic, 100×); at n = 1000 it is over 100× the HVP's. On time, only ratios of best-of-several runs
# with a wide margin: HVP/gradient < 10 (measured 2–3), and the Hessian over 100 HVPs at n = 1000 (measured
# several hundred; a noisy machine slows the single Hessian run, which only raises the ratio).


# %%
def best_time(fn, repeats=5):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def peak_bytes(fn):
    tracemalloc.start()
    result = fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, result


def f(z):
    return tm.log(tm.sum(tm.exp(z)))


rows = []
for n in [100, 300, 1000, 10_000, 100_000, 1_000_000]:
    rng = np.random.default_rng(n)
    x, v = rng.standard_normal(n), rng.standard_normal(n)
    gradient = lambda: tm.grad(f(z := tm.tensor(x, requires_grad=True)), z)  # noqa: E731
    product = lambda: tm.hvp(f, tm.tensor(x), tm.tensor(v))[1]  # noqa: E731
    t_grad, t_hvp = best_time(gradient), best_time(product)
    (grad_peak, _), (hvp_peak, hv) = peak_bytes(gradient), peak_bytes(product)
    p = np.exp(x - x.max()) / np.exp(x - x.max()).sum()
    hv_err = np.abs(hv.numpy() - (p * v - p * (p @ v))).max() / np.abs(p * v).max()
    t_hess = hess_peak = float("nan")
    if n <= 1000:  # the explicit Hessian: n backward passes, n² floats
        t_hess = best_time(lambda: tm.hessian(f, tm.tensor(x)), repeats=3 if n < 1000 else 1)
        hess_peak, H = peak_bytes(lambda: tm.hessian(f, tm.tensor(x)))
        assert np.abs(H.numpy() - (np.diag(p) - np.outer(p, p))).max() <= 1e-12 * p.max()
    rows.append((n, t_grad, t_hvp, t_hess, grad_peak, hvp_peak, hess_peak))
    hess = f"Hessian {t_hess * 1e3:5.1f} ms, peak {hess_peak / 8 / n**2:.2f} n² floats" if n <= 1000 else ""
    print(
        f"n = {n:>7}: gradient {t_grad * 1e3:6.3f} ms, HVP {t_hvp * 1e3:6.3f} ms, HVP/gradient {t_hvp / t_grad:.2f}"
        f" | peak: gradient {grad_peak / 8 / n:4.1f} n, HVP {hvp_peak / 8 / n:4.1f} n floats"
        f" | H v vs p∘v − p(p·v): {hv_err:.0e} (relative) | {hess}"
    )
    assert t_hvp / t_grad < 10 and (n < 1000 or hvp_peak <= 10 * 8 * n) and hv_err <= 1e-12
small, big = rows[0], rows[2]  # n = 100 and 1000: (n, t_grad, t_hvp, t_hess, grad_peak, hvp_peak, hess_peak)
memory_growth, hess_vs_hvp = big[6] / small[6], (big[6] / big[5], big[3] / big[2])
print(f"n = 100 -> 1000: the Hessian's peak memory grows {memory_growth:.0f}× (its time {big[3] / small[3]:.0f}×); "
      f"at n = 1000 it needs {hess_vs_hvp[0]:.0f}× the HVP's memory and {hess_vs_hvp[1]:.0f}× its time")  # fmt: skip
assert memory_growth > 10**1.5 and hess_vs_hvp[0] > 100 and hess_vs_hvp[1] > 100

# %% [markdown]
# The HVP costs about two to three gradients at every n and a handful of n-vectors of memory (below
# n ≈ 10⁴ both times are flat: Python's fixed cost per op outweighs the arithmetic). The Hessian's time
# grows with n (n backward passes) and its memory like n²: at n = 10⁶ the HVP still takes a few gradients,
# while the Hessian would need 8 TB. MAML's meta-gradient needs exactly such products (file 03).

# %%
plt = _figures.pyplot()
if plt is not None:
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    ns, table = np.array([r[0] for r in rows]), np.array([r[1:] for r in rows])
    for k, label in enumerate(["gradient", "Hessian-vector product", "explicit Hessian"]):
        axes[0].loglog(ns, table[:, k] * 1e3, "o-", label=label)
        axes[1].loglog(ns, table[:, 3 + k], "o-", label=label)
    axes[0].set(xlabel="n (parameters)", ylabel="time (ms, best of several runs)", title="f(x) = log Σ exp(x): time")
    axes[1].set(xlabel="n (parameters)", ylabel="peak new memory (bytes)", title="memory: O(n) vs n²")
    axes[0].legend()
    _figures.save(fig, "02_hessian_vector_products.png")
