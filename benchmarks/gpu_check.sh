#!/usr/bin/env bash
# The README's GPU figures, in one call on a GPU machine (about 7 minutes):
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
# (PYTHONPATH), nothing is installed. Fashion-MNIST is looked for in $FASHION_ROOT (default
# .fashion/, ignored by git: `cp -r /usr/share/datasets/fashion-mnist .fashion` before the
# call, and carry it), else skipped.
# Each part writes its log to RESULTS_DIR as it goes, so a call stopped at its limit still
# returns what was done.
set -uo pipefail
cd "$(dirname "$0")/.."

results=${1:?give a folder for the results}
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
    extra=(--data-root "$FASHION_ROOT")  # read by fashion alone
else
    echo "no Fashion-MNIST in $FASHION_ROOT: fashion skipped" | tee -a "$results/machine.txt"
fi
# Data loading in worker processes keeps a GPU fed; on a CPU they would only compete with it.
workers=$([ "$DEVICE" = cuda ] && echo 8 || echo 0)

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
            options=(--workers "$workers")
            [ "$data" = fashion ] && options+=("${extra[@]}")
            python3 benchmarks/results_table.py --device "$DEVICE" --preset small --data "$data" \
                --minutes "$SMALL_MINUTES" --out "$runs/small" -- "${options[@]}"
        done 2>&1 | tee "$results/small.txt" ;;
    ladder)
        for minutes in $LADDER; do
            python3 benchmarks/results_table.py --device "$DEVICE" --preset tiny --data shapes \
                --minutes "$minutes" --out "$runs/ladder-$minutes" -- --workers "$workers"
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
