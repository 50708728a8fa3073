"""What every demo shares: device selection, progress bars, atomic checkpoints, confidence
intervals, result files and optional figures."""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

import tinymeta as tm
from tinymeta import backend, nn


class DemoError(Exception):
    """A problem with the user's input, or a run that cannot go on: printed as one line, exit status 2."""

    status = 2


class Interrupted(DemoError):
    """Ctrl-C: one line saying what was kept and how to go on, exit status 130 (as a shell's)."""

    status = 130


def run(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    try:
        return main(argv)
    except DemoError as error:
        print(f"{'interrupted' if isinstance(error, Interrupted) else 'error'}: {error}", file=sys.stderr)
        return error.status
    except KeyboardInterrupt:
        print(
            "interrupted: checkpoints and results are written whole or not at all; run the same command with "
            "--resume to go on (finished training is not repeated)",
            file=sys.stderr,
        )
        return Interrupted.status


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with its errors (an unknown flag, a value that is not a number) as one-line DemoErrors."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise DemoError(message)


def check_at_least(args: argparse.Namespace, minimum: int, *names: str) -> None:
    """Each ``--name`` must be an integer of at least ``minimum``."""
    for name in names:
        value = getattr(args, name)
        if value < minimum:
            raise DemoError(f"--{name.replace('_', '-')} must be at least {minimum}, got {value}")


def check_positive(args: argparse.Namespace, *names: str) -> None:
    """Each ``--name`` that is set must be a finite number > 0 (NaN and inf are refused)."""
    for name in names:
        value = getattr(args, name)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise DemoError(f"--{name.replace('_', '-')} must be a finite number > 0, got {value}")


def check_out_folder(path: Path, flag: str = "--out") -> None:
    """``path`` must be a folder, or a place where one can be made: refuse a file, or no write access."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = "is a file" if existing == path else f"is inside {existing}, which is a file"
        raise DemoError(f"{flag} {path} {what}; give a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise DemoError(f"{flag} {path}: no permission to write in {existing}")


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
        raise DemoError(f"checkpoint {path} does not exist" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files if k != "__info__"}
            info = json.loads(str(f["__info__"]))
    except Exception as exc:  # a truncated or foreign file
        raise DemoError(f"{path} is not a tinymeta demo checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(info, dict):
        raise DemoError(f"{path} is not a tinymeta demo checkpoint (its settings are not a record)")
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
    path: Path,
    theta: dict[str, tm.Tensor],
    adam_state: dict,
    rng: np.random.Generator,
    iteration: int,
    info: dict,
    history: dict | None = None,
) -> None:
    """Meta-parameters, Adam's moments and step, the data RNG, the iteration and the run's history so
    far (validation curve, running loss...): all --resume needs to continue a run exactly as if it had
    never stopped, and nothing it recorded lost."""
    arrays = {f"param/{n}": p.numpy() for n, p in theta.items()}
    arrays.update({f"adam_m/{n}": backend.to_numpy(v) for n, v in adam_state["m"].items()})
    arrays.update({f"adam_v/{n}": backend.to_numpy(v) for n, v in adam_state["v"].items()})
    meta = dict(info, iteration=iteration, adam_step=adam_state["step"], rng=rng.bit_generator.state)
    meta["history"] = history or {}
    save_checkpoint(path, arrays, meta)


def saved_history(path: Path) -> dict:
    """The history a checkpoint carries ({} for a checkpoint written before histories were kept)."""
    history = load_checkpoint(path)[1].get("history", {})
    return history if isinstance(history, dict) else {}


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
    """The inverse of save_training_state; the run's settings in ``info`` must match the checkpoint's
    (every setting that differs is named), and every entry must be there and well formed."""
    theta, saved = load_params(path, template)
    differ = [
        f"{key}={saved[key]!r} (this run: {value!r})"
        for key, value in info.items()
        if key in saved and saved[key] != value
    ]
    if differ:
        raise DemoError(
            f"--resume: {path} was saved by a run with other settings: {'; '.join(differ)}. Rerun with the "
            "checkpoint's settings, or give another --out to start a new run"
        )
    arrays, _ = load_checkpoint(path)
    missing = [f"{kind}/{n}" for kind in ("adam_m", "adam_v") for n in theta if f"{kind}/{n}" not in arrays]
    missing += [key for key in ("iteration", "adam_step", "rng") if key not in saved]
    if missing:
        raise DemoError(f"{path} cannot be resumed: it has no {', '.join(missing)}")
    for kind in ("adam_m", "adam_v"):
        for n, p in theta.items():
            if arrays[f"{kind}/{n}"].shape != p.shape:
                raise DemoError(
                    f"{path} cannot be resumed: {kind}/{n} has shape {arrays[f'{kind}/{n}'].shape}, not {p.shape}"
                )
    state = {
        "step": saved["adam_step"],
        "m": {n: tm.tensor(arrays[f"adam_m/{n}"]).data for n in theta},
        "v": {n: tm.tensor(arrays[f"adam_v/{n}"]).data for n in theta},
    }
    rng = np.random.default_rng()
    try:
        iteration, step = int(saved["iteration"]), int(saved["adam_step"])
        if iteration < 0 or step < 0:
            raise ValueError("a negative count")
        rng.bit_generator.state = saved["rng"]
    except Exception as exc:
        raise DemoError(
            f"{path} cannot be resumed: its iteration, optimiser step or random state is malformed ({exc})"
        ) from None
    return theta, state, rng, iteration


def meta_train(
    name: str,
    step: Callable[[dict[str, tm.Tensor], np.random.Generator], tuple[float, dict[str, tm.Tensor]]],
    theta: dict[str, tm.Tensor],
    path: Path,
    info: dict,
    args: Any,
    callback: Callable[[int, dict[str, tm.Tensor], float], str | None] | None = None,
    history: dict | None = None,
) -> tuple[dict[str, tm.Tensor], int]:
    """The outer loop every demo shares: Adam on ``step``'s gradients up to ``args.iterations``
    (clipped to a joint norm of ``args.clip_grad_norm`` when that is set).

    ``step(theta, rng)`` samples a meta-batch with ``rng`` and returns (loss, gradients). Every
    ``args.checkpoint_every`` iterations ``callback(iteration, theta, running_loss)`` runs (it may
    return text for the progress bar), then a checkpoint is written atomically, with ``history`` (a
    JSON-able dict the callback may fill, such as a validation curve). With ``args.resume`` the run
    continues from the checkpoint exactly (same parameters, optimiser moments, data stream and running
    loss as a run that never stopped); the caller restores its history with :func:`saved_history`.
    A loss or gradient that overflows stops the run with the likely cause; Ctrl-C stops it saying
    which checkpoint to resume from. Returns θ and the number of iterations done.
    """
    history = {} if history is None else history
    adam = nn.Adam(lr=args.meta_lr)
    state = adam.init(theta)
    rng = np.random.default_rng(args.seed)
    start, saved_at, running = 0, None, None
    if args.resume and path.is_file():
        theta, state, rng, start = restore_training_state(path, theta, info)
        saved_at, running = start, history.get("running_loss")
        print(f"{name}: resumed from {path} at iteration {start}")
    elif args.resume:
        print(f"{name}: no checkpoint at {path} to resume from: starting from iteration 0")
    if start >= args.iterations:
        print(f"{name}: already trained for {start} iterations (>= --iterations {args.iterations})")
        return theta, start
    bar = progress(range(start, args.iterations), args.iterations, start, name, not args.no_progress)
    norms: deque[float] = deque(maxlen=200)  # recent meta-gradient norms, to diagnose a divergence
    note, it = "", start
    try:
        for it in bar:
            loss, grads = step(theta, rng)
            norm = math.sqrt(sum(float((g.data * g.data).sum()) for g in grads.values()))
            if not (math.isfinite(loss) and math.isfinite(norm)):
                raise DemoError(_divergence(name, it, loss, norm, norms, path, saved_at, args))
            norms.append(norm)
            if getattr(args, "clip_grad_norm", None):
                grads, _ = nn.clip_grad_norm(grads, args.clip_grad_norm)
            theta, state = adam.step(theta, grads, state)
            running = loss if running is None else 0.98 * running + 0.02 * loss
            last = it + 1 == args.iterations
            if (it + 1) % args.checkpoint_every == 0 or last:
                if callback is not None:
                    note = callback(it + 1, theta, running) or ""
                history["running_loss"] = running
                save_training_state(path, theta, state, rng, it + 1, info, history)
                saved_at = it + 1
            if (it + 1) % 10 == 0 or last:
                bar.set_postfix_str(f"meta-loss {running:.3f} {note}")
    except KeyboardInterrupt:
        bar.close()
        if saved_at is None:
            raise Interrupted(
                f"{name} stopped at iteration {it}, before its first checkpoint (every --checkpoint-every "
                f"{args.checkpoint_every} iterations): nothing to resume from; run the command again to start over"
            ) from None
        raise Interrupted(
            f"{name} stopped at iteration {it}; {path} holds iteration {saved_at}: run the same command with "
            "--resume to continue from there, exactly as if it had not stopped"
        ) from None
    bar.close()
    return theta, args.iterations


def _divergence(
    name: str, it: int, loss: float, norm: float, norms: deque, path: Path, saved_at: int | None, args: Any
) -> str:
    """One line: where the run diverged, the likely cause, and which checkpoint (if any) is intact."""
    what = f"the meta-loss became {loss}" if not math.isfinite(loss) else f"the meta-gradient norm became {norm}"
    typical = float(np.median(norms)) if norms else None
    if typical is not None and len(norms) >= 20 and max(list(norms)[-10:]) > 100 * typical:
        cause = (
            f"the meta-gradient norm grew from a typical {typical:.3g} to {max(list(norms)[-10:]):.3g} just before: "
            f"the outer loop is unstable; lower --meta-lr (now {args.meta_lr:g}) or set --clip-grad-norm"
        )
    else:
        cause = (
            "the meta-gradients were ordinary until then, so an inner loop overshot on some task: lower "
            f"--inner-lr (now {args.inner_lr:g}) or set --clip-grad-norm"
        )
    kept = (
        f"the last checkpoint, {path} (iteration {saved_at}), is intact, but --resume needs the same settings: "
        "start a new run (another --out) with the lower value"
        if saved_at is not None
        else f"no checkpoint was written yet (the first comes at iteration {args.checkpoint_every})"
    )
    return f"{name}: {what} at iteration {it}; likely cause: {cause}. {kept}"


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
