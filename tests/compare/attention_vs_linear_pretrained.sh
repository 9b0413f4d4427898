#!/usr/bin/env bash
# The attention head against a linear head on a *pretrained* backbone (README, "Measured"):
# mobilenetv3_small is first trained on a 20-class single-label synthetic set, then each head
# is finetuned on the 10-class multi-label set with torchreid's staged learning rates (the head
# at the full rate, the backbone at BASE_LR_MULT times it).
#   tests/compare/attention_vs_linear_pretrained.sh [WORK_DIR] [EPOCHS]
set -euo pipefail
work=${1:-/tmp/reid-heads}
epochs=${2:-15}
reid=${REID_BIN:-target/release/reid}
size=128
mkdir -p "$work"
if [ ! -f "$work/shapes_ml/train.json" ]; then
  "$reid" synth-classes "$work/shapes_ml" --multilabel --classes 10 --max-labels 3 \
    --train-per-class 40 --val-per-class 10 --size "$size" --seed 11
fi
if [ ! -d "$work/shapes20" ]; then
  "$reid" synth-classes "$work/shapes20" --classes 20 --train-per-class 60 \
    --val-per-class 10 --size "$size" --seed 21
fi
if [ ! -f "$work/pretrained/best.bpk" ]; then
  "$reid" train --config examples/configs/mobilenetv3_small_classification.yaml --root "$work" \
    data.sources=[shapes20] data.targets=[shapes20] data.height="$size" data.width="$size" \
    train.lr=0.002 train.max_epoch=15 test.eval_freq=15 test.export_onnx=false \
    data.save_dir="$work/pretrained" | grep -E "^best"
fi
for mult in 0.1 1.0; do
  for head in linear attention; do
    echo "head $head, base_lr_mult $mult:"
    "$reid" train --config examples/configs/efficientnet_b0_multilabel.yaml --root "$work" \
      model.name=mobilenetv3_small model.load_weights="$work/pretrained/best.bpk" \
      model.head="$head" data.height="$size" data.width="$size" \
      train.staged_lr=true "train.new_layers=[classifier,attention]" \
      train.base_lr_mult="$mult" train.max_epoch="$epochs" test.eval_freq="$epochs" \
      test.export_onnx=false data.save_dir="$work/finetuned_${head}_${mult}" \
      | grep -E "epoch $epochs done"
  done
done
