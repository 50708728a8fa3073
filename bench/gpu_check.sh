#!/usr/bin/env bash
# The GPU check of issue 12, in one run: the CuPy test suite, the demos with --device gpu and
# bench/bench_gpu.py (tinymeta on the GPU beside the CPU, PyTorch and JAX), every result into $OUT.
#
#     OUT=/path/to/empty/folder bash bench/gpu_check.sh        # from the repository root
#
# Each step runs under `timeout` (SIGINT first, so pytest and the demos still print what they have)
# with its own limit, cut to what is left of the whole run's deadline (BUDGET seconds, default 420);
# a step that fails or runs out of time is reported and the next one runs. Each step prints one
# line with its status and wall time. Without a GPU it still runs end to end: the suite skips every
# test with the reason, the demos refuse --device gpu in one line, bench_gpu.py measures the CPU only.
#
# $OUT receives at most 8 files: summary.md (environment, one line per step, the suite's summary),
# suite.log, demos.md (the demos' result tables), demos.log, gpu.md and gpu.json (bench_gpu.py),
# bench.log, cpu_bench.md (bench_maml.py and bench_engine.py --quick on this CPU, if time is left).
# Knobs: PY (python3), BUDGET (420), WORKERS (pytest-xdist workers, 8).
set -u
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-/tmp/gpu_check_out}
PY=${PY:-python3}
BUDGET=${BUDGET:-420}
WORKERS=${WORKERS:-8}
RESERVE=15 # seconds kept for writing the summary
mkdir -p "$OUT"
rm -f "$OUT"/{summary.md,suite.log,demos.md,demos.log,gpu.md,gpu.json,bench.log,cpu_bench.md} # logs are appended to
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export HYPOTHESIS_PROFILE=ci MPLBACKEND=Agg PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_PREALLOCATE=false # JAX shares the GPU with CuPy and PyTorch
unset TINYMETA_BACKEND
WORK=$(mktemp -d /tmp/gpu_check.XXXXXX)
START=$SECONDS
SUMMARY=$OUT/summary.md
STEPS=$WORK/steps.md
printf '| step | status | wall s | limit s |\n|---|---|---|---|\n' >"$STEPS"

# step NAME CAP LOG COMMAND...: run COMMAND with at most CAP seconds, output appended to LOG.
step() {
    local name=$1 cap=$2 log=$3
    shift 3
    local left=$((BUDGET - (SECONDS - START) - RESERVE))
    local limit=$((cap < left ? cap : left))
    if ((limit < 20)); then
        printf '| %s | skipped: the run deadline is near | 0 | 0 |\n' "$name" >>"$STEPS"
        printf '%-24s skipped (deadline near)\n' "$name"
        return 0
    fi
    local t0=$SECONDS
    printf '\n===== %s (limit %s s): %s\n' "$name" "$limit" "$*" >>"$log"
    timeout -s INT -k 15 "$limit" "$@" >>"$log" 2>&1
    local rc=$? took=$((SECONDS - t0)) status
    case $rc in
    0) status=ok ;;
    124 | 137) status="TIMED OUT" ;;
    *) status="failed (exit $rc)" ;;
    esac
    printf '| %s | %s | %s | %s |\n' "$name" "$status" "$took" "$limit" >>"$STEPS"
    printf '%-24s %-18s %4s s (limit %s s)\n' "$name" "$status" "$took" "$limit"
    return 0
}

# ---- 0. the environment -----------------------------------------------------------------------
{
    echo "# GPU check ($(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
    echo
    echo '```'
    timeout 20 nvidia-smi -L 2>&1 || echo "nvidia-smi: not available"
    timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 || true
    echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
    echo "memory: $(free -g 2>/dev/null | awk '/^Mem:/ {print $2 " GiB"}')"
    timeout 90 "$PY" - <<'EOF' 2>&1
import importlib, platform
print(f"python {platform.python_version()}")
for name in ("numpy", "cupy", "torch", "jax", "pytest", "hypothesis", "xdist", "pytest_timeout"):
    try:
        print(f"{name} {getattr(importlib.import_module(name), '__version__', '?')}")
    except Exception as exc:
        print(f"{name}: not importable ({type(exc).__name__}: {exc})")
try:
    import cupy
    name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
    print("cupy device 0:", name.decode() if isinstance(name, bytes) else name)
    print("cupy CUDA runtime:", cupy.cuda.runtime.runtimeGetVersion(), "driver:", cupy.cuda.runtime.driverGetVersion())
except Exception as exc:
    print(f"cupy device: none ({type(exc).__name__}: {exc})")
try:
    import torch
    print("torch CUDA:", torch.cuda.is_available() and torch.cuda.get_device_name(0))
except Exception as exc:
    print(f"torch CUDA: none ({type(exc).__name__}: {exc})")
try:
    import jax
    print("jax devices:", jax.devices())
except Exception as exc:
    print(f"jax devices: none ({type(exc).__name__}: {exc})")
try:  # the smallest end-to-end check of tinymeta on the GPU
    import tinymeta as tm
    x = tm.tensor([1.0, 2.0], requires_grad=True, backend="cupy")
    (g,) = tm.grad(tm.sum(x**3), x)
    print("tinymeta on cupy: grad of sum(x**3) at [1, 2] =", g.numpy(), "on", g.backend)
except Exception as exc:
    print(f"tinymeta on cupy: FAILED ({type(exc).__name__}: {exc})")
EOF
    echo '```'
} >"$SUMMARY" 2>&1
echo "environment: in $SUMMARY ($((SECONDS - START)) s)"

# ---- 1. the whole suite on the GPU ---------------------------------------------------------------
parallel=()
if "$PY" -c "import xdist" 2>/dev/null; then parallel=(-n "$WORKERS"); fi
per_test=()
if "$PY" -c "import pytest_timeout" 2>/dev/null; then per_test=(--timeout 120); fi
step "suite (cupy)" 240 "$OUT/suite.log" env TINYMETA_BACKEND=cupy "$PY" -m pytest -q -p no:cacheprovider \
    -rfEs --tb=short --durations=15 "${parallel[@]}" "${per_test[@]}"

# ---- 2. the benchmarks: tinymeta on the GPU beside the CPU, PyTorch and JAX -----------------------
step "bench_gpu.py" 200 "$OUT/bench.log" "$PY" bench/bench_gpu.py --out-dir "$OUT"

# ---- 3. the sinusoid demo on the GPU -------------------------------------------------------------
step "sinusoid demo (gpu)" 120 "$OUT/demos.log" "$PY" -m demos.sinusoid --device gpu --algo maml,fomaml \
    --no-baseline --iterations 2000 --out "$WORK/sinusoid" --no-progress

# ---- 4. the few-shot demo on the GPU at its CPU defaults -----------------------------------------
step "fewshot demo (gpu)" 150 "$OUT/demos.log" "$PY" -m demos.fewshot --device gpu --out "$WORK/fewshot" \
    --no-progress

# ---- 5. the CPU benchmarks as they are, if time is left (JAX kept on the CPU: they are CPU tables) --
step "bench_maml.py --quick" 90 "$OUT/bench.log" env JAX_PLATFORMS=cpu "$PY" bench/bench_maml.py --quick \
    --out-dir "$WORK/cpu"
step "bench_engine.py --quick" 60 "$OUT/bench.log" env JAX_PLATFORMS=cpu "$PY" bench/bench_engine.py --quick \
    --out-dir "$WORK/cpu"

# ---- the tables and the summary ------------------------------------------------------------------
{
    echo "# Demos on the GPU"
    for f in "$WORK/sinusoid/results.md" "$WORK"/fewshot/results/*.json; do
        [ -f "$f" ] || continue
        printf '\n## %s\n\n' "${f#"$WORK"/}"
        fence='```'
        case $f in *.json) printf '%sjson\n%s\n%s\n' "$fence" "$(cat "$f")" "$fence" ;; *) cat "$f" ;; esac
    done
    [ -f "$WORK/sinusoid/results.md" ] || printf '\nNo sinusoid table: see demos.log.\n'
    compgen -G "$WORK/fewshot/results/*.json" >/dev/null || printf '\nNo few-shot result: see demos.log.\n'
} >"$OUT/demos.md"
for f in "$WORK/cpu/maml.md" "$WORK/cpu/engine.md"; do
    [ -f "$f" ] && { cat "$f" && echo; } >>"$OUT/cpu_bench.md"
done
for f in "$OUT"/*; do # a file that comes back must stay under 16 MiB
    if [ "$(stat -c %s "$f")" -gt 15000000 ]; then
        { head -c 7000000 "$f" && printf '\n\n[... cut ...]\n\n' && tail -c 7000000 "$f"; } >"$WORK/cut" && mv "$WORK/cut" "$f"
    fi
done
{
    printf '\n## Steps (total %s s of a %s s budget)\n\n' "$((SECONDS - START))" "$BUDGET"
    cat "$STEPS"
    printf '\n## Suite summary (failures, errors and the last lines of suite.log)\n\n```\n'
    if [ -f "$OUT/suite.log" ]; then
        grep -E '^(FAILED|ERROR) ' "$OUT/suite.log" | head -n 100
        tail -n 4 "$OUT/suite.log"
    fi
    printf '```\n\n## Files in this folder\n\n'
    for f in "$OUT"/*; do printf -- '- %s (%s bytes)\n' "${f##*/}" "$(stat -c %s "$f")"; done
} >>"$SUMMARY"
rm -rf "$WORK"
echo "done in $((SECONDS - START)) s: $OUT/summary.md"
