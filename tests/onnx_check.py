#!/usr/bin/env python3
"""Checks exported ONNX models against the Burn model's outputs (called by tests/export/onnx_parity.rs).

For every `NAME.onnx` in DIR with inputs `NAME.in*.npy` and expected outputs `NAME.out*.npy`:
onnx.checker (full check), ONNX Runtime (CPU) and OpenVINO (CPU, f32 inference precision)
must reproduce the outputs within 1e-4 x max(1, max|ref|); where `NAME.logits*.npy` exist
(classification models), the `logits` output too. Prints one JSON line per model and exits
non-zero if any check fails.

With `--fp16` the models are FP16 exports of the same models: a float16 input is fed the
inputs rounded to float16, and each output row must keep a cosine of at least 0.999 to the
reference and lie within 2e-2 x max(1, max|ref|) of it (float16 keeps 11 significant bits).
"""
import glob
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
import openvino as ov


def main(directory, fp16=False):
    core = ov.Core()
    failed = False
    for path in sorted(glob.glob(os.path.join(directory, "*.onnx"))):
        stem = path[:-5]
        report = {"model": os.path.basename(path)}
        onnx.checker.check_model(path, full_check=True)
        report["checker"] = "ok"
        meta = {p.key: p.value for p in onnx.load(path, load_external_data=False).metadata_props}
        report["architecture"] = meta.get("architecture")
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        compiled = core.compile_model(path, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        for inp in sorted(glob.glob(stem + ".in*.npy")):
            tag = inp[len(stem) + 3:-4]
            x = np.load(inp)
            if session.get_inputs()[0].type == "tensor(float16)":
                x = x.astype(np.float16)
            outputs = [("output", stem + ".out" + tag + ".npy")]
            if os.path.exists(stem + ".logits" + tag + ".npy"):
                outputs.append(("logits", stem + ".logits" + tag + ".npy"))
            ov_result = compiled([x])
            for output, expected in outputs:
                want = np.load(expected)
                tol = (2e-2 if fp16 else 1e-4) * max(1.0, float(np.abs(want).max()))
                got_ort = session.run([output], {"images": x})[0]
                got_ov = ov_result[compiled.output(output)]
                label = tag if output == "output" else f"{output}_{tag}"
                for name, got in [("onnxruntime", got_ort), ("openvino", got_ov)]:
                    got = got.astype(np.float32)
                    err = float(np.abs(got - want).max()) if got.shape == want.shape else float("inf")
                    if fp16 and got.shape == want.shape:
                        dot = (got * want).sum(axis=1)
                        norms = np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1)
                        cosine = float((dot / np.maximum(norms, 1e-30)).min())
                        report[f"{name}_{label}_cosine"] = cosine
                        if not cosine >= 0.999:
                            err = float("inf")
                    report[f"{name}_{label}"] = err
                    report[f"{name}_{label}_relative"] = err / max(1.0, float(np.abs(want).max()))
                    if not err <= tol:
                        failed = True
                        report[f"FAILED_{name}_{label}"] = (
                            f"max|d|={err} > {tol}, shape {got.shape} vs {want.shape}"
                        )
        print(json.dumps(report), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main(sys.argv[-1], fp16="--fp16" in sys.argv[1:-1])
