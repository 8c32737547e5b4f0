#!/usr/bin/env bash
# One-shot check on a machine with one NVIDIA GPU (sized for an H200; no network there).
#
#   1. the poster's best architecture, R128-C32k3-C32k3-R64-AP2-R64-R64-C128k4-C64k3, trained through
#      nas_gym.evaluation.Evaluator on the FULL Fashion-MNIST (55000 train / 5000 val, 28x28, width 1.0,
#      batch 256, lr 0.1) for 5 epochs on cuda: seconds per epoch, val accuracy, test accuracy;
#   2. benchmarks/trainer_throughput.py on cuda, on the mini set and on full Fashion-MNIST.
#   3. benchmarks/scaling.py: children per minute with 1, 2, 4, 8 children training at once on the GPU;
#   4. the README's main command, nas-gym search with its defaults, on the GPU;
#   5. gpu_check.py pool: regularized evolution (budget 16, mini env) alone and with a pool of 4 workers.
# Then a short summary table. Each step has its own time limit; the limits add up to 15 minutes,
# so pick steps with --only on a tight device budget.
#
# Usage, from anywhere:
#   bash benchmarks/gpu_check.sh                 # on the GPU machine
#   bash benchmarks/gpu_check.sh --dry-run       # tiny budgets on the CPU (same as NAS_GYM_GPU_CHECK_SMALL=1)
#   bash benchmarks/gpu_check.sh --only scaling,pool   # some steps only (info always runs)
#
# Data: Fashion-MNIST's four IDX files (.gz or not) in .gpu_data/fashion-mnist/ of the repo root
# (NAS_GYM_DATA defaults to $PWD/.gpu_data when that folder exists), or anywhere nas_gym's lookup finds
# them. Nothing is downloaded and nothing is installed. Python packages: torch (with CUDA), torchvision,
# pillow, numpy and gymnasium; a missing pure-Python one (gymnasium, farama-notifications) may be carried
# as wheels in .gpu_data/wheels/: they are put on PYTHONPATH as they are (zip import), not installed.
# When $OUT is set, a copy of everything printed goes to $OUT/gpu_check.txt.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1
SMALL="${NAS_GYM_GPU_CHECK_SMALL:-0}"
ONLY="final,throughput_mini,throughput_full,scaling,search,pool"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --dry-run) SMALL=1 ;;
        --only) ONLY="$2"; shift ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "gpu_check: unknown argument $1 (--dry-run, --only STEPS)" >&2; exit 2 ;;
    esac
    shift
done
wanted() { [[ ",$ONLY," == *",$1,"* ]]; }
PY="${PYTHON:-$(command -v python3 || command -v python)}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
if [[ -z "${NAS_GYM_DATA:-}" && -d "$ROOT/.gpu_data" ]]; then
    export NAS_GYM_DATA="$ROOT/.gpu_data"
fi
LOGS="$(mktemp -d)"
trap 'rm -rf "$LOGS"' EXIT

# step NAME LIMIT_S CMD...: run with a time limit, stream its output, keep a copy for the summary
step() {
    local name="$1" limit="$2"
    shift 2
    echo
    echo "==== $name (limit ${limit} s): $*"
    local start=$SECONDS
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$LOGS/$name.log"
    local rc=${PIPESTATUS[0]}
    echo "---- $name: exit $rc after $((SECONDS - start)) s"
    echo "$rc" >"$LOGS/$name.rc"
}

# result NAME PATTERN: the step's last line matching PATTERN, or why there is none
result() {
    local rc line
    [[ -f "$LOGS/$1.rc" ]] || { echo "skipped (not in --only)"; return; }
    rc="$(cat "$LOGS/$1.rc")"
    line="$(grep -E "$2" "$LOGS/$1.log" 2>/dev/null | tail -n 1)"
    if [[ "$rc" == 0 && -n "$line" ]]; then echo "$line"
    elif [[ "$rc" == 124 || "$rc" == 137 ]]; then echo "TIMED OUT ${line:+(last: $line)}"
    else echo "FAILED (exit $rc) ${line}"; fi
}

run_all() {
    echo "gpu_check: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), repo $ROOT, python $PY, small=$SMALL"
    echo "NAS_GYM_DATA=${NAS_GYM_DATA:-<unset>}"
    command -v nvidia-smi >/dev/null && nvidia-smi -L

    # --- is torch there? (nothing is installed: the machine has no network)
    local cuda
    if ! cuda="$("$PY" -c 'import torch; print(torch.cuda.is_available())' 2>&1 | tail -n 1)"; then
        echo "gpu_check: torch cannot be imported by $PY ($cuda)."
        echo "gpu_check: this script installs nothing; run it with a python that has torch (set PYTHON=...)."
        return 1
    fi
    echo "torch.cuda.is_available(): $cuda"
    local device
    if [[ "$SMALL" == 1 ]]; then
        device=cpu
    elif [[ "$cuda" == True ]]; then
        device=cuda
    else
        echo "gpu_check: torch sees no CUDA device; for a CPU dry run use --dry-run or NAS_GYM_GPU_CHECK_SMALL=1."
        return 1
    fi

    # --- the other packages; carried pure-Python wheels go on PYTHONPATH (zip import), nothing installed
    if ! "$PY" -c 'import gymnasium' 2>/dev/null; then
        local whl
        for whl in "$ROOT"/.gpu_data/wheels/*.whl; do
            [[ -f "$whl" ]] && PYTHONPATH="$PYTHONPATH:$whl"
        done
        echo "gymnasium is not installed; PYTHONPATH=$PYTHONPATH"
    fi
    local missing
    missing="$("$PY" -c '
import importlib
missing = []
for name in ("numpy", "PIL", "torchvision", "gymnasium"):
    try:
        importlib.import_module(name)
    except Exception as e:  # absent or broken: either way this run cannot use it
        missing.append(f"{name} ({type(e).__name__})")
print(" ".join(missing))' 2>&1)"
    if [[ -n "$missing" ]]; then
        echo "gpu_check: missing Python packages: $missing. Nothing is installed here; carry pure-Python"
        echo "gpu_check: ones as wheels in .gpu_data/wheels/ (e.g. gymnasium, farama-notifications)."
        return 1
    fi

    local final_args mini_args full_args
    if [[ "$SMALL" == 1 ]]; then  # exercise every code path at a tiny budget on the CPU
        final_args=(--epochs 0.5 --train-size 1024 --val-size 512 --image-size 14 --width 0.25)
        mini_args=(--epochs 0.1 --workers 0)
        full_args=(--epochs 0.25 --train-size 2048 --val-size 512 --workers 0)
        scaling_args=(--env NASFashionMini-v0 --workers 1,2 --children 2 --epochs 0.1)
        search_args=(--budget 4 --set epochs=0.1 --set max_layers=3)
        pool_args=(--budget 6 --workers 2 --epochs 0.1)
    else
        final_args=(--epochs 5)
        mini_args=(--workers 0,2,4 --repeats 2)
        full_args=(--epochs 1 --workers 0,4,8)
        scaling_args=(--env NASFashionMNIST-v0 --workers 1,2,4,8 --children 16 --epochs 1)
        search_args=()  # the README's main command: NASFashionMini-v0, reinforce, its default budget
        pool_args=(--budget 16 --workers 4)
    fi

    step info 45 "$PY" benchmarks/gpu_check.py info --device "$device"
    if [[ "$(cat "$LOGS/info.rc")" != 0 ]]; then
        echo "gpu_check: the machine or the data is not usable (see above); stopping."
        return 1
    fi
    wanted final && step final 150 "$PY" benchmarks/gpu_check.py final --device "$device" "${final_args[@]}"
    wanted throughput_mini && step throughput_mini 60 "$PY" benchmarks/trainer_throughput.py \
        --env NASFashionMini-v0 --device "$device" --no-download "${mini_args[@]}"
    wanted throughput_full && step throughput_full 90 "$PY" benchmarks/trainer_throughput.py \
        --env NASFashionMNIST-v0 --device "$device" --no-download "${full_args[@]}"
    wanted scaling && step scaling 240 "$PY" benchmarks/scaling.py --device "$device" "${scaling_args[@]}"
    local run_dir
    run_dir="$(mktemp -d)/run"
    wanted search && step search 150 "$PY" -m agents.cli search --device "$device" --out "$run_dir" "${search_args[@]}"
    wanted pool && step pool 180 "$PY" benchmarks/gpu_check.py pool --device "$device" "${pool_args[@]}"

    echo
    echo "==== summary (device $device, small=$SMALL, ${SECONDS} s in all)"
    printf '%-34s %s\n' "check" "result"
    printf '%-34s %s\n' "final: poster best, full FMNIST" "$(result final '^final_result:')"
    printf '%-34s %s\n' "throughput: NASFashionMini-v0" "$(result throughput_mini '^speedup_vs_dataloader:')"
    printf '%-34s %s\n' "throughput: NASFashionMNIST-v0" "$(result throughput_full '^speedup_vs_dataloader:')"
    printf '%-34s %s\n' "concurrent children, one device" "$(result scaling '^speedup_best_vs_1:')"
    printf '%-34s %s\n' "nas-gym search (defaults)" "$(result search 'trainings; best')"
    printf '%-34s %s\n' "evolution alone vs a pool" "$(result pool '^pool_result:')"
    local name
    for name in ${ONLY//,/ }; do
        [[ "$(cat "$LOGS/$name.rc" 2>/dev/null)" == 0 ]] || return 1
    done
    return 0
}

if [[ -n "${OUT:-}" ]]; then
    mkdir -p "$OUT"
    run_all 2>&1 | tee "$OUT/gpu_check.txt"
    exit "${PIPESTATUS[0]}"
fi
run_all
