"""What every demo shares: device selection, progress bars, atomic checkpoints, confidence
intervals, result files and optional figures."""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

import tinymeta as tm
from tinymeta import backend, nn


class DemoError(Exception):
    """A problem with the user's input: printed as one line, exit status 2."""


def run(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    try:
        return main(argv)
    except DemoError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def use_device(device: str) -> None:
    """Make every tensor the demo creates live on ``device`` ("cpu": NumPy, "gpu": CuPy)."""
    if device == "gpu":
        reason = backend.cupy_unavailable_reason()
        if reason is not None:
            raise DemoError(f"--device gpu: {reason}; run with --device cpu")
        os.environ["TINYMETA_BACKEND"] = "cupy"
    else:
        os.environ["TINYMETA_BACKEND"] = "numpy"


def progress(iterable: Iterable[int], total: int, initial: int, description: str, enabled: bool) -> Any:
    """A tqdm progress bar when tqdm is installed, else a line every 10% (nothing if disabled)."""
    if enabled:
        try:
            from tqdm import tqdm

            return tqdm(iterable, total=total, initial=initial, desc=description, dynamic_ncols=True)
        except ImportError:
            pass
    return _Plain(iterable, total, initial, description, enabled)


class _Plain:
    def __init__(self, iterable: Iterable[int], total: int, initial: int, description: str, enabled: bool) -> None:
        self.iterable, self.total, self.initial, self.description, self.enabled = (
            iterable,
            total,
            initial,
            description,
            enabled,
        )
        self.postfix = ""
        self.start = time.perf_counter()

    def __iter__(self) -> Iterator[int]:
        every = max(1, self.total // 10)
        for i in self.iterable:
            yield i
            if self.enabled and ((i + 1) % every == 0 or i + 1 == self.total):
                elapsed = time.perf_counter() - self.start
                print(f"{self.description}: {i + 1}/{self.total} {self.postfix} [{elapsed:.0f}s]", flush=True)

    def set_postfix_str(self, text: str) -> None:
        self.postfix = text

    def close(self) -> None:
        pass


def to_host(params: dict[str, tm.Tensor]) -> dict[str, np.ndarray]:
    return {n: p.numpy() for n, p in params.items()}


def save_checkpoint(path: Path, arrays: dict[str, np.ndarray], info: dict[str, Any]) -> None:
    """Write arrays and a JSON-able ``info`` dict atomically: a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, __info__=np.array(json.dumps(info)), **arrays)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    if not path.is_file():
        raise DemoError(f"checkpoint {path} does not exist")
    try:
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files if k != "__info__"}
            info = json.loads(str(f["__info__"]))
    except Exception as exc:  # a truncated or foreign file
        raise DemoError(f"{path} is not a tinymeta demo checkpoint ({type(exc).__name__}: {exc})") from None
    return arrays, info


def check_architecture(path: Path, arrays: dict[str, np.ndarray], expected: dict[str, tuple[int, ...]]) -> None:
    """The checkpoint's parameter shapes must be the model's: else say which differs."""
    for name, shape in expected.items():
        if name not in arrays:
            raise DemoError(f"{path} was saved from another architecture: it has no parameter {name!r}")
        if arrays[name].shape != tuple(shape):
            raise DemoError(
                f"{path} was saved from another architecture: {name} has shape {arrays[name].shape}, "
                f"this model needs {tuple(shape)}"
            )


def save_training_state(
    path: Path, theta: dict[str, tm.Tensor], adam_state: dict, rng: np.random.Generator, iteration: int, info: dict
) -> None:
    """Meta-parameters, Adam's moments and step, the data RNG and the iteration: all --resume needs
    to continue a run exactly as if it had never stopped."""
    arrays = {f"param/{n}": p.numpy() for n, p in theta.items()}
    arrays.update({f"adam_m/{n}": backend.to_numpy(v) for n, v in adam_state["m"].items()})
    arrays.update({f"adam_v/{n}": backend.to_numpy(v) for n, v in adam_state["v"].items()})
    meta = dict(info, iteration=iteration, adam_step=adam_state["step"], rng=rng.bit_generator.state)
    save_checkpoint(path, arrays, meta)


def load_params(path: Path, template: dict[str, tm.Tensor]) -> tuple[dict[str, tm.Tensor], dict[str, Any]]:
    """The meta-parameters of a checkpoint, checked against ``template``'s names and shapes."""
    arrays, info = load_checkpoint(path)
    params = {n[len("param/") :]: a for n, a in arrays.items() if n.startswith("param/")}
    check_architecture(path, params, {n: p.shape for n, p in template.items()})
    extra = sorted(set(params) - set(template))
    if extra:
        raise DemoError(f"{path} was saved from another architecture: it has extra parameters {extra}")
    return {n: tm.tensor(params[n], requires_grad=True) for n in template}, info


def restore_training_state(
    path: Path, template: dict[str, tm.Tensor], info: dict
) -> tuple[dict[str, tm.Tensor], dict, np.random.Generator, int]:
    """The inverse of save_training_state; the run's settings in ``info`` must match the checkpoint's."""
    theta, saved = load_params(path, template)
    for key, value in info.items():
        if key in saved and saved[key] != value:
            raise DemoError(f"{path} was saved by a run with {key}={saved[key]!r}, this run has {key}={value!r}")
    arrays, _ = load_checkpoint(path)
    state = {
        "step": saved["adam_step"],
        "m": {n: tm.tensor(arrays[f"adam_m/{n}"]).data for n in theta},
        "v": {n: tm.tensor(arrays[f"adam_v/{n}"]).data for n in theta},
    }
    rng = np.random.default_rng()
    rng.bit_generator.state = saved["rng"]
    return theta, state, rng, int(saved["iteration"])


def meta_train(
    name: str,
    step: Callable[[dict[str, tm.Tensor], np.random.Generator], tuple[float, dict[str, tm.Tensor]]],
    theta: dict[str, tm.Tensor],
    path: Path,
    info: dict,
    args: Any,
    callback: Callable[[int, dict[str, tm.Tensor], float], str | None] | None = None,
) -> tuple[dict[str, tm.Tensor], int]:
    """The outer loop every demo shares: Adam on ``step``'s gradients up to ``args.iterations``
    (clipped to a joint norm of ``args.clip_grad_norm`` when that is set).

    ``step(theta, rng)`` samples a meta-batch with ``rng`` and returns (loss, gradients). A
    checkpoint is written atomically every ``args.checkpoint_every`` iterations and at the end;
    with ``args.resume`` the run continues from it exactly (same parameters, optimiser moments and
    data stream as a run that never stopped). ``callback(iteration, theta, running_loss)`` runs
    every ``args.checkpoint_every`` iterations and may return text for the progress bar.
    Returns θ and the number of iterations done.
    """
    adam = nn.Adam(lr=args.meta_lr)
    state = adam.init(theta)
    rng = np.random.default_rng(args.seed)
    start = 0
    if args.resume and path.is_file():
        theta, state, rng, start = restore_training_state(path, theta, info)
        print(f"{name}: resumed from {path} at iteration {start}")
    if start >= args.iterations:
        print(f"{name}: already trained for {start} iterations (>= --iterations {args.iterations})")
        return theta, start
    bar = progress(range(start, args.iterations), args.iterations, start, name, not args.no_progress)
    running, note = None, ""
    for it in bar:
        loss, grads = step(theta, rng)
        if not np.isfinite(loss):
            raise DemoError(
                f"{name}: the meta-loss became {loss} at iteration {it}; lower --meta-lr or set --clip-grad-norm "
                f"(the last checkpoint, {path}, is intact)"
            )
        if getattr(args, "clip_grad_norm", None):
            grads, _ = nn.clip_grad_norm(grads, args.clip_grad_norm)
        theta, state = adam.step(theta, grads, state)
        running = loss if running is None else 0.98 * running + 0.02 * loss
        last = it + 1 == args.iterations
        if (it + 1) % args.checkpoint_every == 0 or last:
            save_training_state(path, theta, state, rng, it + 1, info)
            if callback is not None:
                note = callback(it + 1, theta, running) or ""
        if (it + 1) % 10 == 0 or last:
            bar.set_postfix_str(f"meta-loss {running:.3f} {note}")
    bar.close()
    return theta, args.iterations


def mean_ci(values: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and the half-width of its 95% confidence interval, 1.96 · std / sqrt(n), along ``axis``."""
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[axis]
    return values.mean(axis=axis), 1.96 * values.std(axis=axis) / np.sqrt(n)


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    os.replace(tmp, path)


def pyplot() -> Any:
    """matplotlib.pyplot (non-interactive), or None with a message when it is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: figures skipped (pip install -e '.[demos]')")
        return None
    return plt
