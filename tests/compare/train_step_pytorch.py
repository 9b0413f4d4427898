#!/usr/bin/env python3
"""PyTorch's seconds per training step for the figure next to benches/train_step.rs:
timm's efficientnet_b0, batch 32, 224x224, 1000 classes, label-smoothed cross-entropy, AMSGrad,
on the CPU with the machine's threads (run by hand; PyPI torch + timm).

    python tests/compare/train_step_pytorch.py [--threads N] [--steps N]
"""
import argparse
import time

import timm
import torch


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = timm.create_model("efficientnet_b0", num_classes=1000, drop_rate=0.0,
                              drop_path_rate=0.0).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4, weight_decay=5e-4, amsgrad=True)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    x = torch.randn(32, 3, 224, 224)
    y = torch.arange(32) // 4
    times = []
    for step in range(args.steps + 2):
        start = time.perf_counter()
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        if step >= 2:  # warm-up
            times.append(time.perf_counter() - start)
    times.sort()
    print(f"efficientnet_b0 b32 224x224: median {times[len(times) // 2]:.3f} s/step "
          f"(min {times[0]:.3f}, {args.threads} threads, torch {torch.__version__})")


if __name__ == "__main__":
    main()
