#!/usr/bin/env python3
"""Throughput of an export's f32, FP16 and INT8 files in ONNX Runtime and OpenVINO.

Usage: bench-precisions.py DIR [THREADS]

DIR holds NAME_f32.onnx, NAME_fp16.onnx and NAME_int8.onnx for one or more NAME (as
`reid export --precision f32|fp16|int8` writes them). Each file runs a prepared batch of 1 and
of 32 at its input size in both runtimes on THREADS threads (default 2), best of three 3-second
runs; prints a Markdown table of images per second.
"""
import glob
import os
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
import openvino as ov


def images_per_second(run, batch):
    run()  # warm-up (and the first run's allocations)
    best = 0.0
    for _ in range(3):
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < 3.0:
            run()
            n += batch
        best = max(best, n / (time.perf_counter() - start))
    return best


def main(directory, threads):
    core = ov.Core()
    precisions = ["f32", "fp16", "int8"]
    header = ["model", "batch"] + [f"{rt} {p}" for rt in ("ONNX Runtime", "OpenVINO") for p in precisions]
    print("| " + " | ".join(header) + " |")
    print("|---|---:|" + "---:|" * (len(header) - 2))
    for f32_path in sorted(glob.glob(os.path.join(directory, "*_f32.onnx"))):
        name = os.path.basename(f32_path)[: -len("_f32.onnx")]
        meta = {p.key: p.value for p in onnx.load(f32_path, load_external_data=False).metadata_props}
        h, w = int(meta["input_height"]), int(meta["input_width"])
        for batch in (1, 32):
            row = [name, str(batch)]
            for runtime in ("ort", "ov"):
                for precision in precisions:
                    path = os.path.join(directory, f"{name}_{precision}.onnx")
                    if not os.path.exists(path):
                        row.append("–")
                        continue
                    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
                    dtype = np.float16 if session.get_inputs()[0].type == "tensor(float16)" else np.float32
                    x = np.random.default_rng(0).standard_normal((batch, 3, h, w)).astype(dtype)
                    if runtime == "ort":
                        options = ort.SessionOptions()
                        options.intra_op_num_threads = threads
                        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
                        run = lambda: session.run(["output"], {"images": x})
                    else:
                        compiled = core.compile_model(
                            path,
                            "CPU",
                            {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"},
                        )
                        request = compiled.create_infer_request()
                        run = lambda: request.infer([x])
                    row.append(f"{images_per_second(run, batch):.1f}")
            print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2)
