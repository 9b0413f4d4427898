#!/usr/bin/env bash
# The checks to run on a machine with an NVIDIA GPU (CI has none): reid's GPU tests on cuda and
# wgpu, the training-step benchmark at batch 64 on both beside PyTorch on the same GPU, a short
# `reid train` end to end, data-parallel scaling when there are two GPUs, and extraction through
# ONNX Runtime's CUDA and TensorRT execution providers. Everything it
# measures goes into one folder, to be copied into the README and the issue note.
#
#   scripts/gpu-check.sh [OUT_DIR]      (default: $OUT, else gpu-results)
#
# Needs: the NVIDIA driver (nvidia-smi), a Rust toolchain, python3 with pip (PyPI's torch wheel
# carries its own CUDA runtime). Offline-safe: the cuda feature's LLVM comes from PyPI through
# scripts/setup-cuda-toolchain.sh. Each part logs to its own file and the script goes on when one
# fails, so a short lease still brings back what did run; the exit status says whether all passed.
set -uo pipefail
cd "$(dirname "$0")/.."

out=$(realpath -m "${1:-${OUT:-gpu-results}}")
mkdir -p "$out"
failed=()
part() { # part NAME COMMAND...: runs COMMAND, its output in $out/NAME.log
  local name=$1
  shift
  echo "== $name ($(date -u +%H:%M:%S))"
  if ! "$@" > "$out/$name.log" 2>&1; then
    failed+=("$name")
    echo "   failed: see $out/$name.log"
  fi
}

nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || echo "no nvidia-smi: is the NVIDIA driver installed?"
gpus=$(nvidia-smi -L 2> /dev/null | grep -c '^GPU' || true)
part toolchain scripts/setup-cuda-toolchain.sh
# Everything builds optimized (--release, and cargo bench): the test profile keeps the GPU stack
# at opt-level 1, which would time its CPU-side overhead.

# 1. The GPU test group (tests/wgpu.rs) on cuda:0, then on wgpu:0 (the GPU's Vulkan driver).
part tests-cuda env REID_GPU_DEVICE=cuda:0 cargo test --release --features cuda --test wgpu
part tests-wgpu env REID_REQUIRE_WGPU=1 cargo test --release --features wgpu --test wgpu

# 2. Seconds per training step, batch 64, 256×128, AMSGrad: reid on cuda and on wgpu, PyTorch on
# the same GPU.
archs=osnet_x0_25,osnet_x1_0,resnet50
for device in cuda:0 wgpu:0; do
  feature=${device%%:*}
  part "train-step-${feature}" env REID_BENCH_DEVICE=$device REID_BENCH_BATCH=64 \
    REID_BENCH_ARCHS=$archs cargo bench --features "$feature" --bench train_step
done
# Mixed precision (train.mix_precision) on cuda: bf16, and f16 with its loss scaling.
for precision in bf16 f16; do
  part "train-step-cuda-${precision}" env REID_BENCH_DEVICE=cuda:0 REID_BENCH_BATCH=64 \
    REID_BENCH_ARCHS=$archs REID_BENCH_PRECISION=$precision cargo bench --features cuda \
    --bench train_step
done
if [ ! -x "$out/venv/bin/python" ]; then
  part pytorch-install sh -c "python3 -m venv '$out/venv' && '$out/venv/bin/pip' install -q torch torchvision torchreid==0.2.5 timm"
fi
part train-step-pytorch "$out/venv/bin/python" tests/compare/train_step_pytorch.py \
  --device cuda --batch 64 --steps 20 --arch ${archs//,/ }
for amp in bf16 fp16; do
  part "train-step-pytorch-${amp}" "$out/venv/bin/python" tests/compare/train_step_pytorch.py \
    --device cuda --batch 64 --steps 20 --arch ${archs//,/ } --amp $amp
done

# 3. A short run end to end on cuda:0: synthetic data, 3 epochs, evaluation, ONNX export.
reid=target/release/reid
part build-cli cargo build --release --features cuda --bin reid
part synth "$reid" synth --ids 100 "$out/data/market1501"
part train-cuda "$reid" train --root "$out/data" device=cuda:0 train.max_epoch=3 \
  train.batch_size=64 data.save_dir="$out/run-cuda"

# 4. Two GPUs in one process: images/s of one epoch on cuda:0 against cuda:0,cuda:1.
if [ "$gpus" -ge 2 ]; then
  part train-two-gpus "$reid" train --root "$out/data" device=cuda:0,cuda:1 \
    train.max_epoch=3 train.batch_size=64 data.save_dir="$out/run-two-gpus"
fi

# 5. Extraction through ONNX Runtime's CUDA and TensorRT execution providers (PyPI's
# onnxruntime-gpu): the export of the run above, f32 and FP16, on the synthetic gallery; the
# provider is required, so a fallback to the CPU fails the part instead of timing the CPU.
if [ ! -x "$out/ort-gpu/bin/python" ]; then
  part ort-gpu-install sh -c "python3 -m venv '$out/ort-gpu' && '$out/ort-gpu/bin/pip' install -q onnxruntime-gpu"
fi
ort_gpu=$(ls "$out"/ort-gpu/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so* 2> /dev/null | head -n 1)
part export-fp16 "$reid" export --weights "$out/run-cuda/best.bpk" -o "$out/model-fp16.onnx" \
  --precision fp16 --calibration "$out/data" --ort-library "$ort_gpu"
for provider in cuda:0 tensorrt:0; do
  for model in "$out/run-cuda/model.onnx" "$out/model-fp16.onnx"; do
    name="extract-${provider%%:*}-$(basename "$model" .onnx)"
    part "$name" sh -c "time '$reid' extract --model '$model' --ort-library '$ort_gpu' \
      --execution-provider $provider --require-provider '$out/data/market1501/bounding_box_test' \
      -o '$out/$name.npy'"
  done
done

echo "results in $out"
if [ ${#failed[@]} -gt 0 ]; then
  echo "failed: ${failed[*]}"
  exit 1
fi
