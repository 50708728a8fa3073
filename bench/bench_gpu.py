"""GPU benchmarks: tinymeta on CuPy beside tinymeta on NumPy, with PyTorch (CUDA) and JAX (GPU) as peers.

    python bench/bench_gpu.py                          # writes bench/results/gpu.md and gpu.json
    python bench/bench_gpu.py --quick --out-dir DIR    # fewer rounds, a 4-task Conv4 batch: a smoke run

Measured, in milliseconds per call:
(a) Sinusoid: one exact second-order MAML meta-gradient of bench_maml.py's problem (its 1-40-40-1
    ReLU network and tasks, K = 10 + 10, α = 0.01), float32, with 25, 250 and 1,000 tasks batched
    and S = 1 and 5 inner steps: tinymeta batched on NumPy (the CPU baseline) and on CuPy, PyTorch's
    torch.func vmap on CUDA and JAX's jit + vmap on the GPU (bench_maml.py's code for both).
(b) Few-shot: one Conv4 MAML meta-gradient at the paper's meta-batch (demos/fewshot.py's --paper
    sizes: 32 tasks, 64 filters, 5-way 1-shot, 15 queries per class, 28x28 images; one inner step,
    α = 0.4; float32; random images): tinymeta on NumPy and CuPy, and PyTorch (torch.func vmap).
(c) One Hessian-vector product against one gradient of bench_engine.py's MLP loss (16-w-w-1 tanh,
    batch 64, float64) at 1e6 and 1e7 parameters, tinymeta on NumPy and on CuPy.

How: every contender is warmed up first (JIT and CuPy kernel compilation, memory pools), then timed
in interleaved rounds, best of N (timing.py); every GPU call ends with a device synchronisation
(CuPy: Device().synchronize(), torch.cuda.synchronize(), JAX: block_until_ready), so what is timed is
the work, not its launch. The few-shot CPU baseline (20 to 40 s) is timed once: NumPy compiles nothing,
and at that length one call is not noise. Speed-ups are against the CPU baseline of the same run, which
uses one BLAS/OpenMP thread (timing.py's convention; the thread settings are written in the results).
Each meta-gradient is compared with tinymeta-CPU's: the largest absolute difference is reported.
float32 means float32 everywhere: TF32 is off in PyTorch and JAX's matmul precision is "highest"
(CuPy does not use TF32 unless CUPY_TF32=1).

Without CuPy or a GPU, the GPU columns are left out with the reason and the CPU numbers are still
measured (--peers-on-cpu runs PyTorch and JAX on the CPU, to test their code where there is no GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from timing import interleaved_best_times  # first: one thread per framework, before NumPy loads

# isort: split
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ["TINYMETA_BACKEND"] = "numpy"  # the default backend is the CPU; the GPU is always asked for by name
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # JAX must not take 75% of the GPU's memory

import bench_engine  # noqa: E402
import bench_maml  # noqa: E402

import tinymeta as tm  # noqa: E402
from demos import fewshot  # noqa: E402
from tinymeta import backend, nn  # noqa: E402
from tinymeta.meta import MAML  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
CPU = "tinymeta, NumPy (CPU)"
Arrays = dict[str, np.ndarray]


@dataclass
class Device:
    """Where tinymeta runs: a backend name and the call that waits for its queued work."""

    label: str
    backend: str
    sync: Callable[[], object]

    def put(self, a: np.ndarray) -> Any:
        """``a`` as an array of this backend (a copy on the GPU for CuPy)."""
        return tm.tensor(a, backend=self.backend).data


@dataclass
class Peers:
    """The peers that can run here: PyTorch's device and JAX's platform (None: skipped), and why not."""

    torch_device: str | None = None
    jax_platform: str | None = None
    notes: list[str] | None = None


def synced(fn: Callable[[], object], sync: Callable[[], object]) -> Callable[[], None]:
    def call() -> None:
        fn()
        sync()

    return call


def tinymeta_devices(notes: list[str]) -> list[Device]:
    devices = [Device(CPU, "numpy", lambda: None)]
    reason = backend.cupy_unavailable_reason()
    if reason is not None:
        notes.append(f"tinymeta on the GPU: skipped, {reason}")
        return devices
    cupy = backend.cupy
    devices.append(Device("tinymeta, CuPy (GPU)", "cupy", cupy.cuda.Device().synchronize))
    return devices


def find_peers(on_cpu: bool) -> Peers:
    peers = Peers(notes=[])
    try:
        import torch

        if on_cpu or torch.cuda.is_available():
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
            peers.torch_device = "cpu" if on_cpu else "cuda"
        else:
            peers.notes.append(f"PyTorch {torch.__version__}: skipped, it sees no CUDA device")
    except Exception as exc:  # ImportError, or CUDA libraries that fail to load
        peers.notes.append(f"PyTorch: skipped ({type(exc).__name__}: {exc})")
    try:
        import jax

        platform_name = jax.default_backend()
        if on_cpu or platform_name == "gpu":
            jax.config.update("jax_default_matmul_precision", "highest")
            peers.jax_platform = platform_name
        else:
            peers.notes.append(f"JAX {jax.__version__}: skipped, its default backend is {platform_name}, not a GPU")
    except Exception as exc:  # ImportError, or a CUDA plugin that fails to start
        peers.notes.append(f"JAX: skipped ({type(exc).__name__}: {exc})")
    return peers


def torch_sync(device: str) -> Callable[[], object]:
    import torch

    return torch.cuda.synchronize if device == "cuda" else lambda: None


def scale(grads: Arrays) -> float:
    """The largest entry of a meta-gradient, in absolute value: what its differences compare with."""
    return max(float(np.max(np.abs(g))) for g in grads.values())


def largest_difference(grads: Arrays, reference: Arrays) -> float:
    return max(float(np.max(np.abs(np.asarray(grads[n], np.float64) - reference[n]))) for n in reference)


def attempt(what: str, notes: list[str], build: Callable[[], Any]) -> Any:
    """``build()``, or None with a note (and the traceback printed) when it raises: one failing
    contender costs its cell, not the run."""
    try:
        return build()
    except Exception as exc:
        traceback.print_exc()
        notes.append(f"{what}: failed ({type(exc).__name__}: {str(exc)[:300]})")
        return None


# ---- (a) the sinusoid meta-gradient --------------------------------------------------------------


def sinusoid(devices: list[Device], peers: Peers, quick: bool, notes: list[str]) -> list[dict]:
    dtype = "float32"
    params = {n: p.numpy() for n, p in nn.MLP([1, 40, 40, 1], dtype=dtype).init(0).items()}
    rows = []
    for tasks in (25, 250, 1000):
        data = bench_maml.sinusoid_batch(np.random.default_rng(0), dtype, tasks)
        for steps in (1, 5):
            fns: dict[str, Callable[[], object]] = {}
            grads: dict[str, Arrays] = {}
            for d in devices:

                def build(d: Device = d) -> tuple:
                    on_device = {n: d.put(v) for n, v in params.items()}
                    built, g = bench_maml.tinymeta_fns(on_device, tuple(d.put(a) for a in data), steps, dtype)
                    return synced(built["tinymeta, batched"], d.sync), g

                built = attempt(f"{d.label}, {tasks} tasks, S = {steps}", notes, build)
                if built is not None:
                    fns[d.label], grads[d.label] = built
            if CPU not in grads:
                continue
            if peers.torch_device:
                found = attempt(
                    f"PyTorch, {tasks} tasks, S = {steps}",
                    notes,
                    lambda: bench_maml.torch_fns(params, data, steps, peers.torch_device, per_task_loop=False),
                )
                for (name, fn), g in zip(found[0].items(), found[1]) if found else ():
                    label = f"{name.split(',')[0]} ({peers.torch_device}), torch.func vmap"
                    fns[label], grads[label] = synced(fn, torch_sync(peers.torch_device)), g
            if peers.jax_platform:
                found = attempt(
                    f"JAX, {tasks} tasks, S = {steps}", notes, lambda: bench_maml.jax_fns(params, data, steps, dtype)
                )
                for (name, fn), g in zip(found[0].items(), found[1]) if found else ():  # fn blocks until ready
                    label = f"{name.split(',')[0]} ({peers.jax_platform}), jit + vmap"
                    fns[label], grads[label] = fn, g
            reference = grads.pop(CPU)
            difference = {name: largest_difference(g, reference) for name, g in grads.items()}
            seconds = interleaved_best_times(fns, repeats=2 if quick else 5, number=1 if quick else 3)
            ms = {name: s * 1e3 for name, s in seconds.items()}
            print(f"  {tasks:5d} tasks, S = {steps}:  " + "  ".join(f"{k}: {v:.2f} ms" for k, v in ms.items()))
            rows.append(dict(tasks=tasks, steps=steps, ms=ms, max_abs_difference=difference, scale=scale(reference)))
    return rows


# ---- (b) the few-shot Conv4 meta-gradient ------------------------------------------------------------


def conv4_data(tasks: int, ways: int, shots: int, queries: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)
    xs = rng.random((tasks, ways * shots, 1, 28, 28), dtype=np.float32)
    xq = rng.random((tasks, ways * queries, 1, 28, 28), dtype=np.float32)
    ys = np.tile(np.repeat(np.arange(ways), shots), (tasks, 1))
    yq = np.tile(np.repeat(np.arange(ways), queries), (tasks, 1))
    return xs, ys, xq, yq


def torch_conv4(params: Arrays, data: tuple, device: str, inner_lr: float) -> tuple[Callable[[], object], Arrays]:
    """PyTorch's Conv4 meta-gradient (torch.func: grad of the mean over a vmap of the tasks), the same
    network as tinymeta's nn.Conv4 (batch norm with each task's batch statistics), and its value."""
    import torch
    import torch.nn.functional as F
    from torch.func import grad, vmap

    theta = {n: torch.tensor(v, device=device) for n, v in params.items()}
    xs, ys, xq, yq = (torch.tensor(a, device=device) for a in data)

    def net(q: dict, x: Any) -> Any:
        h = x
        for i in range(4):
            b = f"blocks.{i}."
            h = F.conv2d(h, q[b + "conv.weight"], q[b + "conv.bias"], padding=1)
            centred = h - h.mean(dim=(0, 2, 3), keepdim=True)
            h = centred / torch.sqrt((centred * centred).mean(dim=(0, 2, 3), keepdim=True) + 1e-5)
            h = h * q[b + "norm.weight"].view(1, -1, 1, 1) + q[b + "norm.bias"].view(1, -1, 1, 1)
            h = F.max_pool2d(F.relu(h), 2)
        return h.flatten(1) @ q["head.weight"] + q["head.bias"]

    def loss(q: dict, x: Any, y: Any) -> Any:
        return F.cross_entropy(net(q, x), y)

    def task_loss(q: dict, x_s: Any, y_s: Any, x_q: Any, y_q: Any) -> Any:
        g = grad(loss)(q, x_s, y_s)
        return loss({n: q[n] - inner_lr * g[n] for n in q}, x_q, y_q)

    meta_grad = grad(lambda q: vmap(task_loss, in_dims=(None, 0, 0, 0, 0))(q, xs, ys, xq, yq).mean())
    return lambda: meta_grad(theta), {n: g.cpu().numpy() for n, g in meta_grad(theta).items()}


def conv4(devices: list[Device], peers: Peers, quick: bool, notes: list[str]) -> dict:
    tasks, filters, queries = (4 if quick else fewshot.PAPER["meta_batch"]), fewshot.PAPER["filters"], 15
    ways, shots, inner_lr = 5, 1, 0.4  # 5-way 1-shot; α = 0.4, demos/fewshot.py's default (the paper's)
    model = nn.Conv4(n_way=ways, filters=filters, dtype="float32")
    maml = MAML(lambda p, x, y: nn.cross_entropy(model(p, x), y), inner_lr=inner_lr, inner_steps=1)
    params = {n: p.numpy() for n, p in maml.init(model.init(0)).items()}
    data = conv4_data(tasks, ways, shots, queries)
    fns: dict[str, Callable[[], object]] = {}
    grads: dict[str, Arrays] = {}
    ms: dict[str, float] = {}
    for d in devices:

        def build(d: Device = d) -> tuple:
            theta = {n: tm.tensor(d.put(v), requires_grad=True) for n, v in params.items()}
            on_device = tuple(d.put(a) for a in data)
            start = time.perf_counter()
            g = maml.meta_grad(theta, *on_device)[1]
            d.sync()
            seconds = time.perf_counter() - start
            return (
                synced(lambda: maml.meta_grad(theta, *on_device), d.sync),
                {n: v.numpy() for n, v in g.items()},
                seconds,
            )

        built = attempt(f"{d.label}, Conv4", notes, build)
        if built is None:
            continue
        if d.label == CPU:
            grads[CPU], ms[CPU] = built[1], built[2] * 1e3  # one call: see the docstring
        else:
            fns[d.label], grads[d.label] = built[:2]
    if CPU not in grads:
        return {}
    if peers.torch_device:
        import torch

        label = f"PyTorch {torch.__version__} ({peers.torch_device}), torch.func vmap"
        built = attempt(label, notes, lambda: torch_conv4(params, data, peers.torch_device, inner_lr))
        if built is not None:
            fns[label], grads[label] = synced(built[0], torch_sync(peers.torch_device)), built[1]
    if fns:
        seconds = interleaved_best_times(fns, repeats=2 if quick else 3, number=1)
        ms.update({name: s * 1e3 for name, s in seconds.items()})
    reference = grads.pop(CPU)
    difference = {name: largest_difference(g, reference) for name, g in grads.items()}
    print("  " + "  ".join(f"{k}: {v:.1f} ms" for k, v in ms.items()))
    sizes = dict(tasks=tasks, filters=filters, ways=ways, shots=shots, queries=queries, inner_lr=inner_lr)
    return dict(sizes, ms=ms, max_abs_difference=difference, scale=scale(reference))


# ---- (c) Hessian-vector product against gradient ---------------------------------------------------


def hvp(devices: list[Device], quick: bool, notes: list[str]) -> dict[str, list[dict]]:
    rows = {}
    for d in devices:
        print(f"  {d.label}:")
        found = attempt(
            f"{d.label}, hvp",
            notes,
            lambda d=d: bench_engine.hvp_vs_grad([1_000_000, 10_000_000], 2 if quick else 5, d.backend, d.sync),
        )
        if found is not None:
            rows[d.label] = found
    return rows


# ---- results ---------------------------------------------------------------------------------------


def machine(devices: list[Device], peers: Peers) -> dict[str, Any]:
    info: dict[str, Any] = dict(
        date=time.strftime("%Y-%m-%d %H:%M"),
        python=platform.python_version(),
        numpy=np.__version__,
        cpu=cpu_name(),
        cpu_count=os.cpu_count(),
        cpu_threads={k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")},
    )
    if len(devices) > 1:
        cupy = backend.cupy
        name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
        info["gpu"] = name.decode() if isinstance(name, bytes) else str(name)
        info["cupy"] = cupy.__version__
        info["cuda_runtime"] = cupy.cuda.runtime.runtimeGetVersion()
        info["cupy_tf32"] = os.environ.get("CUPY_TF32", "0")
    if peers.torch_device:
        import torch

        info["torch"] = torch.__version__
    if peers.jax_platform:
        import jax

        info["jax"] = f"{jax.__version__} ({', '.join(str(d) for d in jax.devices())})"
    return info


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cell(ms: dict[str, float], name: str) -> str:
    if name not in ms:
        return "n/a"
    speedup = ms[CPU] / ms[name] if CPU in ms else float("nan")
    return f"{ms[name]:.2f}" if name == CPU else f"{ms[name]:.2f} ({speedup:.1f}×)"


def short(name: str) -> str:
    """A contender's short name: CuPy for tinymeta on the GPU, else the framework's name."""
    return "CuPy" if name.startswith("tinymeta") else name.split()[0]


def differences(row: dict) -> str:
    found = ", ".join(f"{short(k)}: {v:.1e}" for k, v in row["max_abs_difference"].items())
    return f"{found} (largest entry {row['scale']:.1e})" if found else "n/a"


def columns(rows: list[dict]) -> list[str]:
    return list(dict.fromkeys(name for r in rows for name in r["ms"]))


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    threads = ", ".join(f"{k}={v}" for k, v in m["cpu_threads"].items())
    lines = [
        "# GPU benchmark",
        "",
        f"`{results['command']}` on {m['date']}: GPU {m.get('gpu', 'none')}"
        + (f" (CuPy {m['cupy']}, CUDA runtime {m['cuda_runtime']})" if "gpu" in m else "")
        + f"; CPU {m['cpu']} ({m['cpu_count']} cores), Python {m['python']}, NumPy {m['numpy']}"
        + (f", PyTorch {m['torch']}" if "torch" in m else "")
        + (f", JAX {m['jax']}" if "jax" in m else "")
        + ".",
        "",
        f"The CPU baseline, tinymeta on NumPy, runs with one BLAS/OpenMP thread ({threads}) on a "
        f"{m['cpu_count']}-core machine. Cells: ms per call, best of several rounds after a warm-up, each GPU "
        "call ending in a device synchronisation; (N×) is the speed-up over the CPU baseline of the same run. "
        "float32 is full float32 everywhere (no TF32).",
        "",
    ]
    lines += [f"- {note}" for note in results["notes"]] + ([""] if results["notes"] else [])
    rows = results.get("sinusoid")
    if rows:
        names = columns(rows)
        lines += [
            "## Sinusoid: one exact MAML meta-gradient (1-40-40-1 ReLU, K = 10 + 10, float32), ms",
            "",
            "| tasks | S | " + " | ".join(names) + " | largest difference from tinymeta-CPU's meta-gradient |",
            "|---|---|" + "---|" * (len(names) + 1),
        ]
        for r in rows:
            cells = " | ".join(cell(r["ms"], n) for n in names)
            lines.append(f"| {r['tasks']:,} | {r['steps']} | {cells} | {differences(r)} |")
        lines.append("")
    r = results.get("conv4")
    if r:
        names = list(r["ms"])
        lines += [
            f"## Few-shot: one Conv4 MAML meta-gradient ({r['tasks']} tasks, {r['filters']} filters, {r['ways']}-way "
            f"{r['shots']}-shot, {r['queries']} queries per class, 28x28, 1 inner step, float32), ms",
            "",
            "The CPU baseline is timed in one call (it takes tens of seconds at 32 tasks); the others as above.",
            "",
            "| " + " | ".join(names) + " | largest difference from tinymeta-CPU's meta-gradient |",
            "|" + "---|" * (len(names) + 1),
            "| " + " | ".join(cell(r["ms"], n) for n in names) + f" | {differences(r)} |",
            "",
        ]
    hvp_rows = results.get("hvp")
    if hvp_rows:
        lines += [
            "## Hessian-vector product against one gradient (MLP 16-w-w-1, tanh, batch 64, float64), ms",
            "",
            "| engine | parameters | gradient | hvp | hvp / gradient | gradient: speed-up over CPU |",
            "|---|---|---|---|---|---|",
        ]
        cpu_rows = {row["params"]: row for row in hvp_rows.get(CPU, [])}
        for name, engine_rows in hvp_rows.items():
            for row in engine_rows:
                base = cpu_rows.get(row["params"])
                speedup = f"{base['grad_ms'] / row['grad_ms']:.1f}×" if base and name != CPU else ""
                lines.append(
                    f"| {name} | {row['params']:,} | {row['grad_ms']:.3f} | {row['hvp_ms']:.3f} | "
                    f"{row['ratio']:.2f} | {speedup} |"
                )
        lines.append("")
    return "\n".join(lines)


def write(results: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "gpu.md").write_text(markdown(results))


def main() -> None:
    parser = argparse.ArgumentParser(description="tinymeta on the GPU beside the CPU, PyTorch and JAX")
    parser.add_argument("--quick", action="store_true", help="fewer rounds and a 4-task Conv4 batch (a smoke run)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS, help="where gpu.md and gpu.json go")
    parser.add_argument("--only", nargs="+", choices=["sinusoid", "conv4", "hvp"], help="run these parts only")
    parser.add_argument("--peers-on-cpu", action="store_true", help="PyTorch and JAX on the CPU (tests their code)")
    args = parser.parse_args()
    parts = args.only or ["sinusoid", "conv4", "hvp"]
    notes: list[str] = []
    devices = tinymeta_devices(notes)
    peers = find_peers(args.peers_on_cpu)
    notes += peers.notes or []
    command = "python bench/bench_gpu.py" + " ".join(
        ["", *(["--quick"] if args.quick else []), *(["--only", *args.only] if args.only else [])]
    )
    command += " --peers-on-cpu" if args.peers_on_cpu else ""
    results: dict[str, Any] = dict(command=command, machine=machine(devices, peers), notes=notes)
    for note in notes:
        print(f"note: {note}")
    for part in parts:
        print(f"{part}:", flush=True)
        start = time.perf_counter()
        if part == "sinusoid":
            results["sinusoid"] = sinusoid(devices, peers, args.quick, notes)
        elif part == "conv4":
            results["conv4"] = conv4(devices, peers, args.quick, notes)
        else:
            results["hvp"] = hvp(devices, args.quick, notes)
        print(f"  ({time.perf_counter() - start:.0f} s)", flush=True)
        write(results, args.out_dir)  # after every part: a run stopped later keeps what it measured
    print(f"written: {args.out_dir / 'gpu.md'} and gpu.json")


if __name__ == "__main__":
    main()
