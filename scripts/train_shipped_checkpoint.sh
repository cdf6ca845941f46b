#!/usr/bin/env bash
# Rebuild the small trained CLIP that ships in data/checkpoints/shapes-tiny (chapters 00,
# 10, 11 and 12 load it with miniclip.shipped.load_shipped). A vocabulary of at most 1,000 tokens
# learnt from the captions keeps the whole model at about 4.6 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${STEPS:-1000}
run=runs/shipped-shapes-tiny
rm -rf "$run"  # a fresh run: the trainer only continues a folder that holds one with --resume
python -m miniclip train --data shapes --preset tiny --vocab-size 1000 --steps "$steps" \
    --out "$run" --eval-every 250 --checkpoint-every 250 "$@"
python -m miniclip evaluate "$run"
newest=$(ls -d "$run"/checkpoints/step-* | sort | tail -n 1)
mkdir -p data/checkpoints/shapes-tiny
for file in config.json model.safetensors vocab.json merges.txt tokenizer_config.json; do
    cp "$newest/$file" data/checkpoints/shapes-tiny/
done
cp "$run/eval.json" data/checkpoints/shapes-tiny/eval.json
echo "copied $newest to data/checkpoints/shapes-tiny"
