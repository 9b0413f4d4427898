#!/usr/bin/env bash
# Multi-label mAP of the attention head against a linear head on the same backbone, trained
# with the same recipe on the same synthetic multi-label set (README, "Measured").
#   tests/compare/attention_vs_linear.sh [WORK_DIR] [ARCH] [SIZE] [EPOCHS]
set -euo pipefail
work=${1:-/tmp/reid-heads}
arch=${2:-mobilenetv3_small}
size=${3:-128}
epochs=${4:-15}
reid=${REID_BIN:-target/release/reid}
mkdir -p "$work"
if [ ! -f "$work/shapes_ml/train.json" ]; then
  "$reid" synth-classes "$work/shapes_ml" --multilabel --classes 10 --max-labels 3 \
    --train-per-class 40 --val-per-class 10 --size "$size" --seed 11
fi
for head in linear attention; do
  "$reid" train --config examples/configs/efficientnet_b0_multilabel.yaml --root "$work" \
    model.name="$arch" model.head="$head" data.height="$size" data.width="$size" \
    train.max_epoch="$epochs" test.eval_freq="$epochs" test.export_onnx=false \
    data.save_dir="$work/log_${arch}_${head}" | grep -E "epoch $epochs done|best"
done
