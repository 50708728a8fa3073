# %% [markdown]
# # 07 — Stabilising the bi-level problem: learned step sizes, ANIL, CAVIA
#
# MAML's inner loop φ = θ − α∇L(θ, D^tr) has a hand-set step size α, and every inner parameter
# moves. The outer loop differentiates through that, so a poor α makes the bi-level problem hard:
# too small and adaptation does nothing, too large and the inner loop overshoots. The lecture's
# remedies: **learn α** (Meta-SGD, MAML++), **adapt fewer parameters** (ANIL), **adapt a small
# context vector** instead of the network (CAVIA). Each is trained below on the sinusoid tasks of
# Finn et al. (A ~ U[0.1, 5], phase ~ U[0, π], K = 10 support + 10 query points, a 1-40-40-1 ReLU
# net), for only 500 meta-iterations each (meta-batch 25, Adam 3e-3, float32 for speed): a short
# run, so read the numbers as what 500 iterations show, not as the papers' converged results.

# %%
import time
import timeit

import numpy as np

import tinymeta as tm
from tinymeta import meta, nn, viz

ITERATIONS, META_BATCH = 500, 25


def tasks(rng, count, k=10):
    """Support and query sets [count, k, 1] of random sinusoids (as demos/sinusoid.py samples them)."""
    amplitude, phase = rng.uniform(0.1, 5.0, (count, 1, 1)), rng.uniform(0, np.pi, (count, 1, 1))
    x = rng.uniform(-5.0, 5.0, (count, 2 * k, 1))
    y = amplitude * np.sin(x + phase)
    return tuple(a.astype("float32") for a in (x[:, :k], y[:, :k], x[:, k:], y[:, k:]))


test = tasks(np.random.default_rng(123), 300)  # 300 held-out tasks, the same for every algorithm


def train(algo, context_dim=0, seed=0, **settings):
    model = nn.MLP([1, 40, 40, 1], context_dim=context_dim, dtype="float32")
    context = {"context_dim": context_dim} if context_dim else {}
    learner = meta.make(algo, lambda p, x, y: nn.mse_loss(model(p, x), y), **context, **settings)
    theta, adam, rng = learner.init(model.init(seed=seed)), nn.Adam(3e-3), np.random.default_rng(seed)
    state, start = adam.init(theta), time.perf_counter()
    for _ in range(ITERATIONS):
        _, grads = learner.meta_grad(theta, *tasks(rng, META_BATCH))
        theta, state = adam.step(theta, grads, state)
    print(f"{algo}: {ITERATIONS} meta-iterations in {time.perf_counter() - start:.1f} s")
    return model, learner, theta


def query_mse(model, learner, theta, steps):
    """Mean query MSE over the 300 test tasks after 0, 1, ..., steps inner steps (the algorithm's own rule)."""
    with tm.no_grad():
        return [float(tm.mean(nn.mse_loss(model(phi, test[2]), test[3])).item()) for phi in
                learner.fine_tune(theta, test[0], test[1], steps)]  # fmt: skip


# %% [markdown]
# ## Meta-SGD: a learned step size for every parameter (Li et al. 2017)
#
# φ = θ − α ∘ ∇L(θ, D^tr), with α a tensor the shape of θ, meta-learned with θ (both start at
# α = 0.01 everywhere). Nothing keeps α positive: a negative entry steps *up* its gradient, so
# Meta-SGD learns the direction of the update as well as its size.

# %%
model, maml, theta_maml = train("maml", inner_lr=0.01)
_, metasgd, theta_sgd = train("metasgd", inner_lr=0.01)
maml_curve, sgd_curve = query_mse(model, maml, theta_maml, 2), query_mse(model, metasgd, theta_sgd, 2)
print("layer             min      median   max     negative")
alphas = metasgd.split(theta_sgd)[1]
for name, a in alphas.items():
    a = a.numpy()
    print(f"{name:16s} {a.min():+.4f} {np.median(a):+.4f} {a.max():+.4f} {(a < 0).mean():6.1%}")
everything = np.concatenate([a.numpy().ravel() for a in alphas.values()])
means = [float(a.numpy().mean()) for a in alphas.values()]
print(f"{(everything < 0).sum()} of {everything.size} step sizes are negative; layer means {np.round(means, 3)}")
print(f"test MSE after 1 step: MAML {maml_curve[1]:.3f}, Meta-SGD {sgd_curve[1]:.3f} (before adaptation "
      f"{maml_curve[0]:.3f}, {sgd_curve[0]:.3f})")  # fmt: skip
print(f"a 2nd step with the same α: MAML {maml_curve[2]:.3f}, Meta-SGD {sgd_curve[2]:.3f}")
assert np.abs(everything - 0.01).max() > 0.1 and max(means) - min(means) > 0.01  # α moved, differently per layer
assert (everything < 0).sum() > 0  # some steps go up the gradient
assert sgd_curve[1] < 0.7 * maml_curve[1]  # learned α: a better one-step learner than fixed α = 0.01
assert sgd_curve[2] > sgd_curve[1]  # α is tuned for one step: a second makes it worse

# %% [markdown]
# ## MAML++: one learned α per layer and per step (LSLR, Antoniou et al. 2019)
#
# Far fewer step sizes: one scalar per parameter tensor and inner step (here 6 tensors × 2 steps).
# MAML++ also stabilises training with the multi-step loss (the query loss after every inner step,
# weighted 0.3 and 0.7), used here too. The baseline is like for like: MAML with the same 2 inner steps,
# the same multi-step loss and the same 500 iterations, only its α fixed at 0.01; and, for reference, MAML
# with 2 steps and the plain loss. This is one seed at 500 iterations: the size of LSLR's lead varies with
# the seed (`train(..., seed=1)`), and against plain two-step MAML some seeds shrink it to nothing.

# %%
settings = dict(inner_lr=0.01, inner_steps=2, step_loss_weights=[0.3, 0.7])
_, lslr, theta_lslr = train("maml++", **settings)
_, maml2, theta_maml2 = train("maml", **settings)
_, plain2, theta_plain2 = train("maml", inner_lr=0.01, inner_steps=2)
table = lslr.split(theta_lslr)[1]
print("layer            step 1   step 2")
for name, a in table.items():
    print(f"{name:16s} {a.numpy()[0]:+.4f}  {a.numpy()[1]:+.4f}")
curves = {k: query_mse(model, *v, 2) for k, v in {"lslr": (lslr, theta_lslr), "maml2": (maml2, theta_maml2),
                                                   "plain2": (plain2, theta_plain2)}.items()}  # fmt: skip
print(f"test MSE after 2 steps, all trained with 2: LSLR {curves['lslr'][2]:.3f}; MAML (α = 0.01) with the same "
      f"multi-step loss {curves['maml2'][2]:.3f}, with the plain loss {curves['plain2'][2]:.3f}")  # fmt: skip
values = np.array([a.numpy() for a in table.values()])
print(f"largest move from 0.01: {np.abs(values - 0.01).max():.3f}; spread across layers at step 1: "
      f"{np.ptp(values[:, 0]):.3f}; {(values < 0).sum()} of {values.size} negative")  # fmt: skip
assert np.abs(values - 0.01).max() > 0.05 and np.ptp(values[:, 0]) > 0.05  # moved, and differ across layers
assert curves["lslr"][2] < 0.75 * min(curves["maml2"][2], curves["plain2"][2])

# %% [markdown]
# ## ANIL: only the head adapts (Raghu et al. 2020)
#
# The inner loop updates the last layer alone; the body (the features) is shared by all tasks and
# learned by the outer loop only. ANIL's head gets its own step size here, α = 0.1 (MAML's is 0.01
# for the whole net): the comparison is of the two as configured. Its cost: the ops of one meta-gradient's
# graph (deterministic, asserted) and its time (interleaved with MAML's, best of 15; it varies with the
# machine's load, so it is printed, not asserted).

# %%
_, anil, theta_anil = train("anil", head=model.head_names, inner_lr=0.1)
phi = anil.adapt(theta_anil, test[0], test[1])
moved = {n: float(np.abs(phi[n].numpy() - theta_anil[n].numpy()).max()) for n in theta_anil}  # over the 300 tasks
print("inner loop, largest |φ − θ|:", ", ".join(f"{n} {m:.1e}" for n, m in moved.items()))
assert all((moved[n] > 0) == (n in model.head_names) for n in moved)  # the head moved, the body did not
head_size = sum(theta_anil[n].size for n in model.head_names)
all_size = sum(p.size for p in theta_anil.values())
batch, ms, ops = tasks(np.random.default_rng(1), META_BATCH), {"maml": [], "anil": []}, {}
for key, learner, theta in 15 * (("maml", maml, theta_maml), ("anil", anil, theta_anil)):  # interleaved, best of 15
    ms[key].append(1e3 * timeit.timeit(lambda: learner.meta_grad(theta, *batch), number=1))
    ops[key] = viz.graph_stats(learner.meta_loss(theta, *batch), theta)["ops"]  # the ops the backward pass walks
ms = {key: min(times) for key, times in ms.items()}
anil_curve = query_mse(model, anil, theta_anil, 1)
print(f"ANIL adapts {head_size} of {all_size} parameters ({head_size / all_size:.1%}); one meta-gradient: "
      f"{ops['anil']} ops against MAML's {ops['maml']}, {ms['anil']:.2f} ms against {ms['maml']:.2f} ms "
      f"({ms['anil'] / ms['maml']:.0%})")  # fmt: skip
print(f"test MSE after 1 step: ANIL {anil_curve[1]:.3f}, MAML {maml_curve[1]:.3f}")
assert anil_curve[1] < 1.5 * maml_curve[1] and ops["anil"] < 0.75 * ops["maml"]

# %% [markdown]
# Raghu et al.'s *feature reuse* reading: after MAML training, does the inner loop mostly change the
# head? Two checks on the MAML θ above: how far each layer moves relative to its size,
# |φ − θ| / |θ| (mean over the test tasks), and the test loss when only the head's part of the step
# is kept. On their image benchmarks head-only adaptation lost almost nothing; on this short sinusoid
# run it does not hold: the first layer moves most, and the body's step carries most of the gain.

# %%
phi, moved = maml.adapt(theta_maml, test[0], test[1]), {}
for name, p in theta_maml.items():
    change = np.linalg.norm((phi[name].numpy() - p.numpy()).reshape(len(test[0]), -1), axis=1).mean()
    moved[name] = change / np.linalg.norm(p.numpy())
    print(f"{name:16s} |φ − θ| / |θ| = {moved[name]:.4f}")
assert max(moved, key=moved.get) == "layers.0.weight"  # the first layer, not the head, moves most
head_step = meta.make("anil", maml.loss_fn, head=model.head_names, inner_lr=0.01)  # MAML's step, head part only
head_only = query_mse(model, head_step, theta_maml, 1)
recovered = (maml_curve[0] - head_only[1]) / (maml_curve[0] - maml_curve[1])
print(f"MAML θ, test MSE: before {maml_curve[0]:.3f}, full step {maml_curve[1]:.3f}, head's step only "
      f"{head_only[1]:.3f}: the head alone recovers {recovered:.0%} of the gain")  # fmt: skip
assert recovered < 0.5

# %% [markdown]
# ## CAVIA: adapt a context vector, not the network (Zintgraf et al. 2019)
#
# The network takes 5 extra inputs, the context φ, concatenated to x. Every task starts from φ = 0,
# and one inner step (α = 1.0, the paper's) changes φ alone; θ is learned in the outer loop.

# %%
cavia_model, cavia, theta_cavia = train("cavia", context_dim=5, inner_lr=1.0)
start, adapted = list(cavia.fine_tune(theta_cavia, test[0], test[1], 1))
network = max(float(np.abs(adapted[n].numpy() - theta_cavia[n].numpy()).max()) for n in theta_cavia)
print(f"largest |context| before the step {np.abs(start['context'].numpy()).max()}, after "
      f"{np.abs(adapted['context'].numpy()).max():.3f}; largest change of the network {network}")  # fmt: skip
assert np.all(start["context"].numpy() == 0) and np.abs(adapted["context"].numpy()).max() > 0 and network == 0
cavia_curve = query_mse(cavia_model, cavia, theta_cavia, 1)
size = sum(p.size for p in theta_cavia.values())
print(f"CAVIA adapts {adapted['context'].shape[1]} context numbers per task against the network's {size};")
print(f"test MSE {cavia_curve[0]:.3f} at φ = 0, {cavia_curve[1]:.3f} after 1 step (MAML {maml_curve[1]:.3f})")
assert cavia_curve[1] < maml_curve[1]
