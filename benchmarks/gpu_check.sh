#!/usr/bin/env bash
# The README's GPU figures, in one call on a GPU machine (an estimated 7 to 9 minutes):
#
#   1. bench:  training-step speed and peak memory of miniclip against transformers.CLIPModel,
#              bf16 autocast, presets tiny, small and vit-b-32 at batch 256; then gradient
#              accumulation's price and saving on the last preset, a batch of 4 x 256 taken
#              whole, in 4 and in 16 micro-batches;
#   2. small:  the `small` preset trained for $SMALL_MINUTES minutes on each built-in dataset
#              and evaluated (the README's results table, GPU rows);
#   3. ladder: the `tiny` preset on shapes with shorter and shorter budgets ($LADDER minutes),
#              to find how long a GPU takes to pass the 2-core CPU's 5-minute figures.
#
#   bash benchmarks/gpu_check.sh RESULTS_DIR                 # on the GPU machine
#   PARTS=ladder bash benchmarks/gpu_check.sh RESULTS_DIR    # only what a cut-short call missed
#   DEVICE=cpu SMALL_MINUTES=0.05 LADDER=0.05 PRESETS=tiny BATCH=16 \
#       bash benchmarks/gpu_check.sh /tmp/gpu-trial          # a dry run of the script on a CPU
#
# It needs only what a GPU image with PyTorch already holds (torch, transformers, numpy,
# matplotlib, pillow, safetensors, regex, tqdm): the package is used from this checkout
# (PYTHONPATH), nothing is installed. It prints the versions of torch and transformers first
# and refuses ones older than pyproject.toml accepts. Fashion-MNIST is looked for in
# $FASHION_ROOT (default .fashion/, ignored by git: `cp -r /usr/share/datasets/fashion-mnist
# .fashion` before the call, and carry it), else skipped.
# Each part writes its log to RESULTS_DIR as it goes, so a call stopped at its limit still
# returns what was done. The runs themselves are trained in $RUNS (default runs/gpu, in the
# checkout); each run's eval.json, metrics.jsonl, train_config.json and training.png are
# copied to RESULTS_DIR/<part's folder>/<run>/ (small/shapes-small/, ladder-0.25/shapes-tiny/)
# as soon as the run is evaluated. A relative RESULTS_DIR is taken from where it is called.
set -uo pipefail
results=${1:?give a folder for the results}
case $results in /*) ;; *) results="$PWD/$results" ;; esac
cd "$(dirname "$0")/.."
mkdir -p "$results"
DEVICE=${DEVICE:-cuda}
PARTS=${PARTS:-bench small ladder}
PRESETS=${PRESETS:-tiny small vit-b-32}
BATCH=${BATCH:-256}
SMALL_MINUTES=${SMALL_MINUTES:-1}
LADDER=${LADDER:-0.25 0.5}
FASHION_ROOT=${FASHION_ROOT:-.fashion}
runs=${RUNS:-runs/gpu}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" MINICLIP_PROGRESS=0 PYTHONUNBUFFERED=1

# The oldest torch and transformers that pyproject.toml accepts (tests/test_benchmarks.py checks they agree).
python3 - 2.6 5.21 <<'EOF' || exit 1
import sys
try:
    import torch, transformers
    from packaging.version import Version
except ImportError as error:
    sys.exit(f"gpu_check.sh needs torch and transformers installed: {error}")
print(f"torch {torch.__version__}, transformers {transformers.__version__}")
for module, floor in zip((torch, transformers), sys.argv[1:]):
    # release numbers alone: a GPU image's "2.6.0a0+git..." build is 2.6.0
    if Version(module.__version__).release < Version(floor).release:
        sys.exit(f"{module.__name__} {module.__version__} is older than {floor}, the oldest miniclip "
                 f"supports (pyproject.toml): pip install '{module.__name__}>={floor}' first")
EOF
if [ "$DEVICE" = cuda ] && ! python3 -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
    echo "torch sees no GPU here: on a machine without one, DEVICE=cpu makes this a dry run" >&2
    exit 1
fi
python3 - <<'EOF' 2>&1 | tee "$results/machine.txt"
import os, platform, torch, transformers
gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
print(f"{gpu}; {os.cpu_count()} CPU cores; python {platform.python_version()}, "
      f"torch {torch.__version__}, transformers {transformers.__version__}")
EOF

datasets="shapes emoji"
extra=()
if [ -f "$FASHION_ROOT/t10k-images-idx3-ubyte.gz" ]; then
    datasets="shapes fashion emoji"
    extra=(--data-root "$FASHION_ROOT")  # results_table.py gives it to the fashion run alone
else
    echo "no Fashion-MNIST in $FASHION_ROOT: fashion skipped" | tee -a "$results/machine.txt"
fi
# Data loading in worker processes keeps a GPU fed; on a CPU they would only compete with it.
workers=$([ "$DEVICE" = cuda ] && echo 8 || echo 0)

# What comes back from the GPU machine is RESULTS_DIR alone: each run's results and curves
# in $runs/$1 go to RESULTS_DIR/$1, a folder per run.
keep_runs() {
    for run in "$runs/$1"/*/; do
        [ -d "$run" ] || continue  # no run there: the pattern itself
        run=${run%/}
        mkdir -p "$results/$1/${run##*/}"
        for file in eval.json metrics.jsonl train_config.json training.png; do
            [ -f "$run/$file" ] && cp "$run/$file" "$results/$1/${run##*/}/"
        done
    done
}

for part in $PARTS; do
    case $part in
    bench)
        {
            for preset in $PRESETS; do
                python3 benchmarks/bench_train_step.py --device "$DEVICE" --preset "$preset" --batch-size "$BATCH"
            done
            python3 benchmarks/bench_accumulate.py --device "$DEVICE" --preset "${PRESETS##* }" \
                --batch-size $((4 * BATCH)) --splits 1 4 16
        } 2>&1 | tee "$results/bench.txt" ;;
    small)
        for data in $datasets; do
            options=()
            [ "$data" = fashion ] && options+=("${extra[@]}")
            python3 benchmarks/results_table.py --device "$DEVICE" --preset small --data "$data" \
                --minutes "$SMALL_MINUTES" --out "$runs/small" "${options[@]}" -- --workers "$workers"
            keep_runs small
        done 2>&1 | tee "$results/small.txt" ;;
    ladder)
        for minutes in $LADDER; do
            python3 benchmarks/results_table.py --device "$DEVICE" --preset tiny --data shapes \
                --minutes "$minutes" --out "$runs/ladder-$minutes" -- --workers "$workers"
            keep_runs "ladder-$minutes"
        done 2>&1 | tee "$results/ladder.txt" ;;
    *)
        echo "unknown part $part: the parts are bench, small and ladder" >&2
        exit 2 ;;
    esac
done
# The samples/s the trainer itself logged, last window of each run.
for metrics in "$runs"/*/*/metrics.jsonl; do
    [ -f "$metrics" ] || continue
    echo "$metrics: $(grep samples_per_s "$metrics" | tail -1)"
done | tee "$results/samples_per_s.txt"
