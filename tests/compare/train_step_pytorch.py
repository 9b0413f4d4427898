#!/usr/bin/env python3
"""PyTorch's seconds per training step, the figures next to benches/train_step.rs: batch 32,
label-smoothed cross-entropy, AMSGrad (lr 3e-4, weight decay 5e-4), on the CPU with the
machine's threads (run by hand; PyPI torch, torchreid 0.2.5, timm):

- osnet_x0_25 and osnet_x1_0 (torchreid), 256x128, 751 identities;
- efficientnet_b0 (timm), 224x224, 1000 classes;
- resnet50 (torchreid), 256x128, 751 identities (the GPU comparison of scripts/gpu-check.sh).

    python tests/compare/train_step_pytorch.py [--threads N] [--steps N] [--arch NAME ...]
        [--device cpu|cuda] [--batch N] [--amp bf16|fp16]

`--amp` trains as torch.autocast does on the GPU (convolutions and matrix products in half
precision, float32 weights), fp16 with torch's GradScaler: the peer of reid's
`train.mix_precision`.
"""
import argparse
import time

import torch

SETUPS = {
    "osnet_x0_25": ((256, 128), 751),
    "osnet_x1_0": ((256, 128), 751),
    "efficientnet_b0": ((224, 224), 1000),
    "resnet50": ((256, 128), 751),
}


def build(arch, classes):
    if arch.startswith("osnet") or arch == "resnet50":
        import torchreid
        return torchreid.models.build_model(arch, num_classes=classes, loss="softmax",
                                            pretrained=False)
    import timm
    return timm.create_model(arch, num_classes=classes, drop_rate=0.0, drop_path_rate=0.0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--arch", nargs="*", default=["osnet_x0_25", "osnet_x1_0",
                                                      "efficientnet_b0"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--amp", choices=["bf16", "fp16"])
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    for arch in args.arch:
        torch.manual_seed(0)
        (h, w), classes = SETUPS[arch]
        model = build(arch, classes).to(device).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-4, weight_decay=5e-4,
                                     amsgrad=True)
        loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
        x = torch.randn(args.batch, 3, h, w, device=device)
        y = (torch.arange(args.batch) // 4).to(device)
        amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.amp)
        scaler = torch.amp.GradScaler(device.type, enabled=args.amp == "fp16")
        times = []
        for step in range(args.steps + 2):
            start = time.perf_counter()
            optimizer.zero_grad()
            with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                loss = loss_fn(model(x), y)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if step >= 2:  # warm-up
                times.append(time.perf_counter() - start)
        times.sort()
        print(f"{arch} b{args.batch} {h}x{w} {args.device}: median {times[len(times) // 2]:.3f} s/step "
              f"(min {times[0]:.3f}, {args.threads} threads, {args.amp or 'float32'}, "
              f"torch {torch.__version__})")


if __name__ == "__main__":
    main()
