#!/usr/bin/env bash
# The GPU checks a session on a CUDA machine runs, in one script, so that a machine lent for minutes is spent on
# measuring, not on typing:
#
#   bash scripts/gpu_checks.sh OUT [STEP...]        STEP: tests | speed | curves=MINUTES | toy=MINUTES
#
# With no STEP: tests speed curves=7. Steps run in the order given:
#   tests      tests/test_gpu.py: every GPU path (CUDA graphs, mixed precision, channels-last, compile, the GPU
#              row of the time table); the report goes to OUT/tests.txt.
#   speed      r3gan-cifar10's step speed on the GPU (bench/gpu_speed.py --presets r3gan-cifar10), appended to
#              docs/BENCHMARKS.md as that script's own GPU section.
#   curves=M   issue #19's GPU row: scripts/time_curves.py --device cuda (15 s, 60 s and 5 min of training per
#              preset, three seeds at 60 s), whole runs only (--order chain), none started that cannot finish
#              within M minutes; docs/zoo/time_runs_cuda.json keeps what is done, so the next session continues.
#   toy=M      the 2-D protocol table at 400 epochs (docs/PROTOCOLS.md §1) with scripts/zoo_results.py on CUDA
#              graphs, stopped after M minutes.
#
# Each step runs even when an earlier one failed; the script exits 1 when any did. What the steps wrote under
# docs/ is copied into OUT/docs, to be brought back into the repository (the scripts own those files).
set -u
usage="usage: bash scripts/gpu_checks.sh OUT [STEP...]  (STEP: tests | speed | curves=MINUTES | toy=MINUTES)"
out=${1:?$usage}
shift
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(tests speed curves=7)
for s in "${steps[@]}"; do  # every step is checked before anything runs
    case $s in
        tests | speed) ;;
        curves=* | toy=*)
            [[ ${s#*=} =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "gpu_checks: $s: MINUTES must be a number" >&2; exit 2; } ;;
        *) echo "gpu_checks: unknown step '$s'; $usage" >&2; exit 2 ;;
    esac
done
python -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "gpu_checks: no CUDA device here")' \
    || exit 2
mkdir -p "$out/docs/zoo"
failed=()
step() {  # step NAME COMMAND...: run it, keep its output, note a failure and go on
    local name=$1
    shift
    echo "== $name: $*"
    local t0=$SECONDS
    if "$@" > >(tee "$out/$name.txt") 2>&1; then
        echo "== $name: ok ($((SECONDS - t0)) s)"
    else
        echo "== $name: FAILED ($((SECONDS - t0)) s)"
        failed+=("$name")
    fi
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.txt" 2>&1 || true
for s in "${steps[@]}"; do
    case $s in
        tests) step tests python -m pytest -q -p no:cacheprovider tests/test_gpu.py ;;
        speed) step speed python bench/gpu_speed.py --presets r3gan-cifar10 --seconds 10 --no-fd \
                   --append docs/BENCHMARKS.md ;;
        curves=*) step curves python scripts/time_curves.py --device cuda --order chain --max-minutes "${s#*=}" ;;
        toy=*)
            min=${s#*=}
            step toy timeout "$(python -c "print(int(float('$min') * 60))")" python scripts/zoo_results.py \
                --sections toy --toy-epochs 400 --seeds 5 --device cuda --cuda-graphs --ensemble --together --tf32 \
                --runs runs/zoo_gpu --out docs/ZOO.md ;;
    esac
done
cp -p docs/ZOO.md docs/BENCHMARKS.md "$out/docs/" 2>/dev/null
for f in docs/zoo/time_runs_cuda.json docs/zoo/time_curves_cuda.png docs/zoo/time_cuda-*.png docs/zoo/toy_runs.json; do
    [ -f "$f" ] && cp -p "$f" "$out/docs/zoo/"
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "gpu_checks: failed: ${failed[*]} (their output: $out/NAME.txt)"
    exit 1
fi
echo "gpu_checks: all steps passed; results in $out"
