#!/usr/bin/env python3
"""PyTorch's per-convolution timings, the figures next to benches/conv.rs: batch 32, the same
four convolutions, forward and forward + backward (`y.backward(dy)`, both gradients), median
of 10 runs after 2 warm-up runs, on the CPU (run by hand; PyPI torch).

    python tests/compare/conv_speed_pytorch.py [--threads N]
"""
import argparse
import time

import torch
import torch.nn.functional as F

# name, in channels, out channels, kernel, stride, padding, groups, input height, width
OPS = [
    ("stem_7x7_s2_3to16", 3, 16, 7, 2, 3, 1, 256, 128),
    ("depthwise_3x3_c64", 64, 64, 3, 1, 1, 64, 64, 32),
    ("pointwise_64to64", 64, 64, 1, 1, 0, 1, 64, 32),
    ("dense_3x3_64to64", 64, 64, 3, 1, 1, 1, 64, 32),
]


def median_ms(fn, runs=10):
    times = []
    for i in range(runs + 2):
        start = time.perf_counter()
        fn()
        if i >= 2:
            times.append(time.perf_counter() - start)
    times.sort()
    return 1e3 * times[len(times) // 2]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    for name, cin, cout, k, stride, pad, groups, h, w in OPS:
        x = torch.randn(32, cin, h, w, requires_grad=True)
        weight = torch.randn(cout, cin // groups, k, k, requires_grad=True)

        def forward():
            with torch.no_grad():
                return F.conv2d(x, weight, stride=stride, padding=pad, groups=groups)

        dy = torch.randn_like(forward())

        def both():
            x.grad = None
            weight.grad = None
            F.conv2d(x, weight, stride=stride, padding=pad, groups=groups).backward(dy)

        flops = 2 * dy.numel() * (cin // groups) * k * k
        fwd, fwd_bwd = median_ms(forward), median_ms(both)
        print(f"{name}: forward {fwd:.2f} ms ({flops / fwd / 1e6:.1f} GFLOP/s), "
              f"forward+backward {fwd_bwd:.2f} ms ({args.threads} threads, "
              f"torch {torch.__version__})")
    a = torch.full((1024, 1024), 0.5)
    ms = median_ms(lambda: a @ a)
    print(f"matmul 1024: {ms:.2f} ms ({2 * 1024 ** 3 / ms / 1e6:.1f} GFLOP/s)")


if __name__ == "__main__":
    main()
