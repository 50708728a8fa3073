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
import tracemalloc
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
            "interrupted outside training: every file written so far is complete (each is written whole or "
            "not at all); finished training is in the checkpoints, which --resume continues",
            file=sys.stderr,
        )
        return Interrupted.status
    except (MemoryError, OverflowError) as exc:  # sizes the machine cannot hold
        print(f"error: not enough memory for these sizes ({type(exc).__name__}: {exc}); lower them", file=sys.stderr)
        return DemoError.status


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The module docstring as it is written, and every option's default in --help."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with its errors (an unknown flag, a value that is not a number) as one-line DemoErrors,
    and every default shown in --help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise DemoError(message)


def path_argument(text: str) -> Path:
    """An argparse type for paths: an empty string is refused (it would silently mean this folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path")
    return Path(text)


def explicit_flags(parser: argparse.ArgumentParser, argv: list[str] | None) -> set[str]:
    """The destinations of the options given on the command line (not left at their defaults)."""
    unset = object()
    probe = argparse.Namespace(**{action.dest: unset for action in parser._actions})
    parser.parse_args(argv, namespace=probe)
    return {dest for dest, value in vars(probe).items() if value is not unset}


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


def prepare_out(path: Path, folders: Iterable[str] = (), files: Iterable[str] = (), flag: str = "--out") -> None:
    """Make the output folder now, before any work, and check that the ``folders`` and ``files`` to be
    written inside it can be: a file where a folder goes (or a folder where a file goes) is refused."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = "is a file" if existing == path else f"is inside {existing}, which is a file"
        raise DemoError(f"{flag} {path} {what}; give a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".tinymeta-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise DemoError(f"{flag} {path}: cannot write there ({exc.strerror or exc})") from None
    for name in folders:
        if (path / name).exists() and not (path / name).is_dir():
            raise DemoError(f"{flag} {path}: {path / name} is a file, but the demo writes a folder there")
    for name in files:
        for target in (path / name, path / (name + ".tmp")):  # a file is written through its .tmp sibling
            if target.is_dir():
                raise DemoError(f"{flag} {path}: {target} is a folder, but the demo writes a file there")


def check_memory(nbytes: float, what: str) -> None:
    """Refuse, before any work, sizes whose arrays would not fit in this machine's memory."""
    try:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX machine: let the allocation decide
        return
    if nbytes > available:
        raise DemoError(
            f"{what} would need {nbytes / 1e9:.3g} GB of memory, more than this machine's {available / 1e9:.3g} GB"
        )


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


def _atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Write ``path`` whole or not at all: into a temporary file renamed over it at the end, which an
    interruption (Ctrl-C, an error) removes instead of leaving behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_checkpoint(path: Path, arrays: dict[str, np.ndarray], info: dict[str, Any]) -> None:
    """Arrays and a JSON-able ``info`` dict, written atomically: a crash never leaves half a file."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, __info__=np.array(json.dumps(info)), **arrays)

    _atomically(path, write)


RESUME_ADVICE = "--resume cannot continue from it: pass --overwrite to start over, or give another --out"


def load_checkpoint(path: Path, advice: str = "") -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and settings of a checkpoint ``save_checkpoint`` wrote. A file that is not one (text,
    another format, an .npz without the demo's settings, a truncated or damaged one) is a one-line
    DemoError saying which, ended by ``advice`` (what to do instead) when given; the file is closed
    whatever happens."""
    if not path.is_file():
        raise DemoError(f"checkpoint {path} does not exist" + (" (it is a folder)" if path.is_dir() else ""))

    def not_a_checkpoint(why: str) -> DemoError:
        return DemoError(
            f"{path} is not a tinymeta demo checkpoint (an .npz file a demo wrote): {why}"
            + (f"; {advice}" if advice else "")
        )

    try:
        with open(path, "rb") as file:
            head = file.read(512)
            if not head.startswith(b"PK"):  # an .npz is a zip archive
                raise not_a_checkpoint(_what_it_is(head))
            file.seek(0)
            with np.load(file, allow_pickle=False) as f:
                if "__info__" not in f.files:
                    raise not_a_checkpoint("it is an .npz archive without a demo's settings record")
                arrays = {k: f[k] for k in f.files if k != "__info__"}
                info = json.loads(str(f["__info__"]))
    except DemoError:
        raise
    except OSError as exc:
        raise DemoError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except Exception as exc:  # a truncated or damaged archive
        raise not_a_checkpoint(f"it is truncated or damaged ({type(exc).__name__}: {exc})") from None
    if not isinstance(info, dict):
        raise not_a_checkpoint("its settings are not a record")
    return arrays, info


def _what_it_is(head: bytes) -> str:
    """Why the first bytes of a file are not a checkpoint's, in words."""
    if not head:
        return "it is empty"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not just a character cut at the end of what was read
            return "it is not an .npz archive"
    if b"\0" in head:
        return "it is not an .npz archive"
    return "it is a text file, not an .npz archive"


def checkpoint_iteration(path: Path) -> int | None:
    """The iteration a readable checkpoint holds, else None."""
    try:
        iteration = load_checkpoint(path)[1].get("iteration")
    except DemoError:
        return None
    return iteration if type(iteration) is int else None


def check_architecture(path: Path, arrays: dict[str, np.ndarray], expected: dict[str, tm.Tensor]) -> None:
    """The checkpoint's parameters must be the model's: the same names, shapes and dtypes, and finite."""
    for name, like in expected.items():
        if name not in arrays:
            raise DemoError(f"{path} was saved from another architecture: it has no parameter {name!r}")
        if arrays[name].shape != like.shape:
            raise DemoError(
                f"{path} was saved from another architecture: {name} has shape {arrays[name].shape}, "
                f"this model needs {like.shape}"
            )
        if arrays[name].dtype != like.dtype:
            raise DemoError(f"{path}: {name} is {arrays[name].dtype}, this run's model is {like.dtype} (see --dtype)")
        if not np.isfinite(arrays[name]).all():
            raise DemoError(f"{path}: {name} holds NaN or inf: the run had diverged before this checkpoint was saved")


def save_training_state(
    path: Path,
    theta: dict[str, tm.Tensor],
    adam_state: dict,
    rng: np.random.Generator,
    iteration: int,
    info: dict,
    history: dict | None = None,
    cost: dict | None = None,
) -> None:
    """Meta-parameters, Adam's moments and step, the data RNG, the iteration and the run's history so
    far (validation curve, running loss...): all --resume needs to continue a run exactly as if it had
    never stopped, and nothing it recorded lost. ``cost`` (see ``meta_train``) is what the run measured
    of its own speed and memory, kept apart from the history, which is the same however the run was
    interrupted, while timings are not."""
    arrays = {f"param/{n}": p.numpy() for n, p in theta.items()}
    arrays.update({f"adam_m/{n}": backend.to_numpy(v) for n, v in adam_state["m"].items()})
    arrays.update({f"adam_v/{n}": backend.to_numpy(v) for n, v in adam_state["v"].items()})
    meta = dict(info, iteration=iteration, adam_step=adam_state["step"], rng=rng.bit_generator.state)
    meta["history"] = history or {}
    if cost is not None:
        meta["cost"] = cost
    save_checkpoint(path, arrays, meta)


def saved_history(path: Path) -> dict:
    """The history a checkpoint carries (validation curve, running loss...; {} if it has none)."""
    history = load_checkpoint(path)[1].get("history", {})
    return history if isinstance(history, dict) else {}


def load_params(path: Path, template: dict[str, tm.Tensor]) -> tuple[dict[str, tm.Tensor], dict[str, Any]]:
    """The meta-parameters of a checkpoint, checked against ``template``: names, shapes, dtypes, finite."""
    arrays, info = load_checkpoint(path)
    params = {n[len("param/") :]: a for n, a in arrays.items() if n.startswith("param/")}
    check_architecture(path, params, template)
    extra = sorted(set(params) - set(template))
    if extra:
        raise DemoError(f"{path} was saved from another architecture: it has extra parameters {extra}")
    return {n: tm.tensor(params[n], requires_grad=True) for n in template}, info


def restore_training_state(
    path: Path, template: dict[str, tm.Tensor], info: dict
) -> tuple[dict[str, tm.Tensor], dict, np.random.Generator, int, dict]:
    """The inverse of save_training_state: (θ, Adam's state, the data RNG, the iteration, the history).

    The run's settings in ``info`` must be recorded in the checkpoint and equal (every setting that
    differs is named, before the parameters are looked at), and every entry must be well formed.
    """
    arrays, saved = load_checkpoint(path, RESUME_ADVICE)
    missing = [key for key in info if key not in saved]
    if missing:
        raise DemoError(
            f"{path} does not record the settings {missing}, so this run cannot be checked against it: start a "
            "new run (--overwrite, or another --out)"
        )
    differ = [f"{key}={saved[key]!r} (this run: {value!r})" for key, value in info.items() if saved[key] != value]
    if differ:
        raise DemoError(
            f"--resume: {path} was saved by a run with other settings: {'; '.join(differ)}. Rerun with the "
            "checkpoint's settings, or give another --out to start a new run"
        )
    theta, _ = load_params(path, template)
    expected = {f"{kind}/{n}" for kind in ("param", "adam_m", "adam_v") for n in theta}
    absent = sorted(expected - set(arrays)) + [key for key in ("iteration", "adam_step", "rng") if key not in saved]
    if absent:
        raise DemoError(f"{path} cannot be resumed: it has no {', '.join(absent)}")
    if set(arrays) - expected:
        raise DemoError(
            f"{path} cannot be resumed: it holds arrays this run does not know: {sorted(set(arrays) - expected)}"
        )
    for kind in ("adam_m", "adam_v"):
        for n, p in theta.items():
            moment = arrays[f"{kind}/{n}"]
            sound = moment.shape == p.shape and moment.dtype == p.dtype and bool(np.isfinite(moment).all())
            if not sound or (kind == "adam_v" and (moment < 0).any()):
                what = "finite" + (", never negative" if kind == "adam_v" else "")
                raise DemoError(
                    f"{path} cannot be resumed: {kind}/{n} is {moment.dtype} {moment.shape} (needs {p.dtype} "
                    f"{p.shape}, {what})"
                )
    state = {
        "step": saved["adam_step"],
        "m": {n: tm.tensor(arrays[f"adam_m/{n}"]).data for n in theta},
        "v": {n: tm.tensor(arrays[f"adam_v/{n}"]).data for n in theta},
    }
    iteration, history = saved["iteration"], saved.get("history", {})
    counts_sound = type(iteration) is int and 0 <= iteration < 10**12 and saved["adam_step"] == iteration
    losses = [history.get(key) for key in ("running_loss", "first_loss")] if isinstance(history, dict) else [""]
    if not counts_sound or any(v is not None and not (type(v) in (int, float) and math.isfinite(v)) for v in losses):
        raise DemoError(f"{path} cannot be resumed: its iteration, optimiser step or history is malformed")
    rng = np.random.default_rng()
    try:
        rng.bit_generator.state = saved["rng"]
    except Exception as exc:
        raise DemoError(f"{path} cannot be resumed: its random state is malformed ({exc})") from None
    return theta, state, rng, saved["iteration"], saved.get("history", {})


COST_WARMUP = 10  # iterations of each training session left out of the timing (first calls, caches)
COST_KEYS = ("timed_seconds", "timed_iterations", "peak_mb")  # what a checkpoint's "cost" records


def peak_memory_mb(fn: Callable[[], Any]) -> float:
    """The peak memory, in MB (2**20 bytes), that Python and NumPy allocate while ``fn()`` runs, above
    what was allocated before (tracemalloc, which sees NumPy's arrays; not CuPy's)."""
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        if not tracing:
            tracemalloc.stop()
    return (peak - base) / 2**20


def saved_cost(path: Path) -> dict | None:
    """The cost a checkpoint recorded (see ``meta_train``), checked; None if it records none."""
    cost = load_checkpoint(path)[1].get("cost")
    if cost is None:
        return None
    seconds, count, peak = (cost.get(k) if isinstance(cost, dict) else "" for k in COST_KEYS)
    sound = (
        type(count) is int
        and count >= 0
        and type(seconds) in (int, float)
        and math.isfinite(seconds)
        and seconds >= 0
        and (peak is None or (type(peak) in (int, float) and math.isfinite(peak) and peak >= 0))
    )
    if not sound:
        raise DemoError(f"{path}: its recorded cost is malformed ({cost!r}): the checkpoint is damaged")
    device = cost.get("device", "cpu")  # recorded since GPU runs exist: an older checkpoint ran on the CPU
    if device not in ("cpu", "gpu", "cpu and gpu"):
        raise DemoError(f"{path}: its recorded cost names an unknown device {device!r}: the checkpoint is damaged")
    return {**{k: cost[k] for k in COST_KEYS}, "device": device}


def cost_summary(cost: dict | None) -> dict[str, Any]:
    """ms per meta-iteration (None when no iteration was timed), peak MB (None on the GPU) and the
    device of a recorded cost."""
    if cost is None:
        return {"ms_per_iteration": None, "peak_mb": None, "timed_iterations": 0, "device": None}
    count = cost["timed_iterations"]
    ms = 1000 * cost["timed_seconds"] / count if count else None
    return {"ms_per_iteration": ms, "peak_mb": cost["peak_mb"], "timed_iterations": count, "device": cost["device"]}


def check_start(path: Path, template: dict[str, tm.Tensor], info: dict, args: Any) -> None:
    """Before any work: a checkpoint already at ``path`` is either resumed (--resume: it is checked now,
    settings and all), or replaced (--overwrite), or the run is refused, so that no earlier run is
    silently lost."""
    if not path.exists():
        return
    if args.resume:
        restore_training_state(path, template, info)
    elif not getattr(args, "overwrite", False):
        held = checkpoint_iteration(path)
        raise DemoError(
            f"{path} holds a run already{f' (iteration {held})' if held is not None else ''}: pass --resume to "
            "continue it, --overwrite to start over, or give another --out"
        )


def meta_train(
    name: str,
    step: Callable[[dict[str, tm.Tensor], np.random.Generator, int], tuple[float, dict[str, tm.Tensor]]],
    theta: dict[str, tm.Tensor],
    path: Path,
    info: dict,
    args: Any,
    callback: Callable[[int, dict[str, tm.Tensor], float], str | None] | None = None,
    history: dict | None = None,
    base_loss: Callable[[dict[str, tm.Tensor]], float] | None = None,
    inner: str | None = None,
    measure_cost: bool = False,
) -> tuple[dict[str, tm.Tensor], int]:
    """The outer loop every demo shares: Adam on ``step``'s gradients up to ``args.iterations``
    (clipped to a joint norm of ``args.clip_grad_norm`` when that is set).

    ``step(theta, rng, iteration)`` samples a meta-batch with ``rng`` and returns (loss, gradients) for
    outer ``iteration`` (0-based; MAML++'s derivative-order annealing depends on it). Every
    ``args.checkpoint_every`` iterations ``callback(iteration, theta, running_loss)`` runs (it may
    return text for the progress bar), then a checkpoint is written atomically with ``history`` (a
    JSON-able dict the callback may fill, such as a validation curve). With ``args.resume`` the run
    continues from the checkpoint exactly (same parameters, optimiser moments, data stream, running
    loss and history as a run that never stopped). A loss or gradient that overflows stops the run
    with its likely cause, told apart by ``base_loss(theta)``, the loss of θ before any adaptation:
    θ itself blown up (the outer loop, --meta-lr) or sound (the inner loop, the flag ``inner`` names;
    None for a method without one). Ctrl-C stops it saying which checkpoint to resume from.
    Returns θ and the number of iterations done.

    With ``measure_cost`` the run records its own cost in the checkpoint (``saved_cost``): the wall
    time of every meta-iteration (sampling the batch, the meta-gradient, clipping and Adam's update;
    not the checkpoints, callbacks or progress bar) but the first ``COST_WARMUP`` of each session,
    summed over the sessions of a resumed run, and the peak memory of one
    meta-iteration (``peak_memory_mb``), measured once before the first, on a batch of its own, so the
    run's data stream is untouched. On the GPU the peak is not measured (None): tracemalloc sees host
    memory only.
    """
    history = {} if history is None else history
    adam = nn.Adam(lr=args.meta_lr)
    state = adam.init(theta)
    rng = np.random.default_rng(args.seed)
    start, running, ours = 0, None, False  # ours: the checkpoint at path belongs to this run
    cost: dict | None = {"timed_seconds": 0.0, "timed_iterations": 0, "peak_mb": None} if measure_cost else None
    # (and "device", set below: "cpu", "gpu", or "cpu and gpu" for a run resumed on the other one)
    if args.resume and path.is_file():
        theta, state, rng, start, saved = restore_training_state(path, theta, info)
        for key, value in saved.items():
            history.setdefault(key, value)
        running, ours = history.get("running_loss"), True
        if measure_cost:
            cost = saved_cost(path) or cost
        print(f"{name}: resumed from {path} at iteration {start}")
    elif args.resume:
        print(f"{name}: no checkpoint at {path} to resume from: starting from iteration 0")
    if start >= args.iterations:
        print(f"{name}: already trained for {start} iterations (>= --iterations {args.iterations})")
        return theta, start
    with np.errstate(all="ignore"):  # overflow is caught below, in one line, not warned about per op
        reference = base_loss(theta) if base_loss is not None else None
        on_gpu = any(backend.backend_name(p.data) == "cupy" for p in theta.values())
        if cost is not None:  # a run resumed on another device has timings from both
            here = "gpu" if on_gpu else "cpu"
            cost["device"] = here if cost.get("device", here) == here else "cpu and gpu"
        if cost is not None and cost["peak_mb"] is None and not on_gpu:  # tracemalloc cannot see device memory
            # one meta-iteration on a batch of its own, discarded
            probe = np.random.default_rng(2**32 + 1)  # not the run's data stream
            adam.step(theta, step(theta, probe, start)[1], state)  # once untraced: first calls' allocations
            cost["peak_mb"] = peak_memory_mb(lambda: adam.step(theta, step(theta, probe, start)[1], state))
    bar = progress(range(start, args.iterations), args.iterations, start, name, not args.no_progress)
    note, it = "", start
    try:
        for it in bar:
            began = time.perf_counter()
            with np.errstate(all="ignore"):  # overflow is caught here, in one line, not warned about per op
                loss, grads = step(theta, rng, it)
                norm = math.sqrt(
                    sum(float(np.square(backend.to_numpy(g.data), dtype=np.float64).sum()) for g in grads.values())
                )
                if not (math.isfinite(loss) and math.isfinite(norm)):
                    cause = _divergence(name, it, loss, norm, theta, base_loss, reference, inner, path, args, ours)
                    raise DemoError(cause)
                if getattr(args, "clip_grad_norm", None):
                    grads, _ = nn.clip_grad_norm(grads, args.clip_grad_norm)
                theta, state = adam.step(theta, grads, state)
            if cost is not None and it - start >= COST_WARMUP:
                cost["timed_seconds"] += time.perf_counter() - began
                cost["timed_iterations"] += 1
            history.setdefault("first_loss", loss)
            running = loss if running is None else 0.98 * running + 0.02 * loss
            last = it + 1 == args.iterations
            if (it + 1) % args.checkpoint_every == 0 or last:
                if callback is not None:
                    note = callback(it + 1, theta, running) or ""
                history["running_loss"] = running
                save_training_state(path, theta, state, rng, it + 1, info, history, cost)
                ours = True
            if (it + 1) % 10 == 0 or last:
                bar.set_postfix_str(f"meta-loss {running:.3f} {note}")
    except KeyboardInterrupt:
        bar.close()
        held = checkpoint_iteration(path) if ours and path.is_file() else None
        if held is None:
            earlier = f" (the earlier run's checkpoint at {path} is untouched)" if path.is_file() else ""
            raise Interrupted(
                f"{name} stopped at iteration {it}, before its first checkpoint: nothing of this run to resume "
                f"from{earlier}; run the command again to start over"
            ) from None
        raise Interrupted(
            f"{name} stopped at iteration {it}; {path} holds iteration {held}: run the same command with "
            "--resume to continue from there, exactly as if it had not stopped"
        ) from None
    bar.close()
    with np.errstate(all="ignore"):
        unadapted = base_loss(theta) if base_loss is not None else None
    first = history.get("first_loss")
    outer = f"lower --meta-lr (now {args.meta_lr:g}) or set --clip-grad-norm"
    if unadapted is not None and reference is not None and _blew_up(unadapted, reference):
        warning = (
            f"the meta-parameters themselves blew up (their loss before adaptation went from {reference:.3g} to "
            f"{unadapted:.3g}): the outer loop is unstable; {outer}"
        )
    elif unadapted is not None and inner is not None and running > 100 * unadapted:
        warning = (
            f"adapting makes the query loss {running / unadapted:.3g} times worse than not adapting ({running:.3g} "
            f"against {unadapted:.3g}): the inner loop overshoots; lower {inner}"
        )
    elif first is not None and running > 10 * first:
        warning = f"the meta-loss grew from {first:.3g} to {running:.3g} during training: it did not learn; {outer}"
    else:
        warning = None
    if warning:
        print(f"warning: {name}: {warning}", file=sys.stderr)
    return theta, args.iterations


def _blew_up(loss: float, reference: float) -> bool:
    """Whether θ's loss before adaptation is no longer that of a training run (NaN, or 10x its start)."""
    return not loss <= 10 * max(reference, 1e-12)


def _divergence(
    name: str,
    it: int,
    loss: float,
    norm: float,
    theta: dict[str, tm.Tensor],
    base_loss: Callable[[dict[str, tm.Tensor]], float] | None,
    reference: float | None,
    inner: str | None,
    path: Path,
    args: Any,
    ours: bool,
) -> str:
    """One line: where the run diverged, the likely cause, and which checkpoint of this run (if any) is
    intact."""
    what = f"the meta-loss became {loss}" if not math.isfinite(loss) else f"the meta-gradient norm became {norm}"
    outer = f"lower --meta-lr (now {args.meta_lr:g}) or set --clip-grad-norm"
    with np.errstate(all="ignore"):
        finite = all(np.isfinite(backend.to_numpy(p.data)).all() for p in theta.values())
        before = base_loss(theta) if base_loss is not None and finite else None
    if not finite:
        cause = f"the last update made the meta-parameters overflow: the outer loop is unstable; {outer}"
    elif before is not None and reference is not None and _blew_up(before, reference):
        cause = (
            f"the meta-parameters themselves blew up (their loss before adaptation is {before:.3g}, it was "
            f"{reference:.3g} at the start): the outer loop is unstable; {outer}"
        )
    elif inner is not None:
        sound = f" (their loss before adaptation is {before:.3g})" if before is not None else ""
        cause = (  # --clip-grad-norm clips the meta-gradient: it cannot stop the inner steps from overshooting
            f"the meta-parameters are sound{sound}, so the inner loop overshot on some task: lower {inner}"
        )
    else:
        cause = f"the training is unstable; {outer}"
    held = checkpoint_iteration(path) if ours and path.is_file() else None
    if held is not None:
        kept = (
            f"the last checkpoint, {path} (iteration {held}), is intact, but --resume needs the same settings: "
            "start a new run (--overwrite, or another --out) with the lower value"
        )
    else:
        first = min(args.checkpoint_every * (it // args.checkpoint_every + 1), args.iterations)
        kept = f"this run wrote no checkpoint yet (the first would have come at iteration {first})"
    return f"{name}: {what} at iteration {it}; likely cause: {cause}. {kept}"


def mean_ci(values: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and the half-width of its 95% confidence interval, 1.96 · std / sqrt(n), along ``axis``."""
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[axis]
    return values.mean(axis=axis), 1.96 * values.std(axis=axis) / np.sqrt(n)


def inner_solve_summary(reports: Iterable[Any]) -> dict[str, Any] | None:
    """How well iMAML's inner problems were solved, pooled over batches (its ``last_inner`` after each;
    None for an algorithm that reports none): the tasks, how many reached the solver's tolerance, the
    proximal gradient norm ||∇L_prox(φ)|| at the φ used relative to ||∇L(θ)|| where the solver started
    (median and largest over the tasks where it is finite; ``not_finite`` counts the others), and the
    solver steps taken (median and largest)."""
    reports = [r for r in reports if r is not None]
    if not reports:
        return None
    residual, initial = (np.concatenate([getattr(r, key) for r in reports]) for key in ("residual", "initial"))
    steps = np.concatenate([r.iterations for r in reports])
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = np.where(residual == 0, 0.0, residual / initial)  # 0 / 0: a task solved where it started
    finite = np.isfinite(relative)
    return dict(
        tasks=int(residual.size), solved=int(np.concatenate([r.converged for r in reports]).sum()),
        tol=float(reports[0].tol), not_finite=int((~finite).sum()),
        median_relative_residual=float(np.median(relative[finite])) if finite.any() else None,
        max_relative_residual=float(relative[finite].max()) if finite.any() else None,
        median_steps=float(np.median(steps)), max_steps=int(steps.max()),
    )  # fmt: skip


def describe_inner_solve(summary: dict[str, Any]) -> str:
    """``inner_solve_summary`` in one line."""
    text = f"{summary['solved']} of {summary['tasks']} inner problems solved to tol {summary['tol']:g}"
    if summary["median_relative_residual"] is not None:
        text += (
            f"; ||∇L_prox(φ)|| median {summary['median_relative_residual']:.2g} of ||∇L(θ)|| (largest "
            f"{summary['max_relative_residual']:.2g})"
        )
    if summary["not_finite"]:
        text += f"; {summary['not_finite']} not finite"
    return text + f"; solver steps median {summary['median_steps']:g}, at most {summary['max_steps']}"


def write_json(path: Path, data: Any) -> None:
    _atomically(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2) + "\n"))


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(rows)

    _atomically(path, write)


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
