#!/usr/bin/env python3
"""Checks exported ONNX models against the Burn model's outputs (called by tests/export/onnx_parity.rs).

For every `NAME.onnx` in DIR with inputs `NAME.in*.npy` and expected outputs `NAME.out*.npy`:
onnx.checker (full check), ONNX Runtime (CPU) and OpenVINO (CPU, f32 inference precision)
must reproduce the outputs within 1e-4 x max(1, max|ref|); where `NAME.logits*.npy` exist
(classification models), the `logits` output too. Prints one JSON line per model and exits
non-zero if any check fails.
"""
import glob
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
import openvino as ov


def main(directory):
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
            outputs = [("output", stem + ".out" + tag + ".npy")]
            if os.path.exists(stem + ".logits" + tag + ".npy"):
                outputs.append(("logits", stem + ".logits" + tag + ".npy"))
            ov_result = compiled([x])
            for output, expected in outputs:
                want = np.load(expected)
                tol = 1e-4 * max(1.0, float(np.abs(want).max()))
                got_ort = session.run([output], {"images": x})[0]
                got_ov = ov_result[compiled.output(output)]
                label = tag if output == "output" else f"{output}_{tag}"
                for name, got in [("onnxruntime", got_ort), ("openvino", got_ov)]:
                    err = float(np.abs(got - want).max()) if got.shape == want.shape else float("inf")
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
    main(sys.argv[1])
