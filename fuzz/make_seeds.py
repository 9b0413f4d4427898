"""Writes the fuzz targets' generated seeds into fuzz/corpus/<target>/ (small valid inputs of the
formats no test fixture covers). Seeds taken from the test fixtures are listed in fuzz/seeds.txt
and copied by fuzz/run instead. Needs NumPy, PyTorch, safetensors and onnx; run outside CI:

    python fuzz/make_seeds.py
"""

import io
import os
import sqlite3
import struct

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper
from safetensors.numpy import save as save_safetensors

HERE = os.path.dirname(os.path.abspath(__file__))


def out(target, name):
    folder = os.path.join(HERE, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, name)


def write(target, name, data):
    with open(out(target, name), "wb") as f:
        f.write(data)


def gallery(name, metric, vectors):
    path = out("gallery", name)
    if os.path.exists(path):
        os.remove(path)
    db = sqlite3.connect(path)
    db.executescript(
        """CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
           CREATE TABLE entries (id INTEGER PRIMARY KEY, identity INTEGER NOT NULL,
                                 camera INTEGER NOT NULL, tag TEXT, vector BLOB NOT NULL);
           CREATE INDEX entries_identity ON entries(identity);"""
    )
    meta = {"format": "reid-gallery", "version": "1", "dim": str(vectors.shape[1]), "metric": metric}
    db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
    for i, v in enumerate(vectors):
        db.execute(
            "INSERT INTO entries VALUES (?, ?, ?, ?, ?)",
            (i + 1, i % 2, i % 3, f"t{i}" if i else None, v.astype("<f4").tobytes()),
        )
    db.commit()
    db.execute("VACUUM")
    db.close()


def npz(**arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def torch_bytes(obj, zipped=True):
    buffer = io.BytesIO()
    torch.save(obj, buffer, _use_new_zipfile_serialization=zipped)
    return buffer.getvalue()


def cbor(value):
    """CBOR of dicts, lists, strings and non-negative ints: what burnpack's metadata holds."""

    def head(major, n):
        if n < 24:
            return bytes([major << 5 | n])
        for info, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
            if n < 1 << (8 * struct.calcsize(fmt)):
                return bytes([major << 5 | info]) + struct.pack(fmt, n)
        raise ValueError(n)

    if isinstance(value, int):
        return head(0, value)
    if isinstance(value, str):
        data = value.encode()
        return head(3, len(data)) + data
    if isinstance(value, (list, tuple)):
        return head(4, len(value)) + b"".join(cbor(v) for v in value)
    if isinstance(value, dict):
        return head(5, len(value)) + b"".join(cbor(k) + cbor(v) for k, v in value.items())
    raise TypeError(value)


def burnpack(metadata, tensors):
    """Burn's burnpack layout: magic "BURN", version 1, metadata size, CBOR metadata, then the
    tensor data from the next 256-byte boundary."""
    data, descriptors = b"", {}
    for name, array in tensors.items():
        raw = array.astype("<f4").tobytes()
        descriptors[name] = {"dtype": "F32", "shape": list(array.shape),
                             "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    meta = cbor({"tensors": descriptors, "metadata": metadata})
    head = struct.pack("<IHI", 0x4255524E, 1, len(meta)) + meta
    start = -(-len(head) // 256) * 256
    return head + b"\0" * (start - len(head)) + data


def onnx_model(architecture, dim):
    weight = helper.make_tensor("fc.0.weight", TensorProto.FLOAT, [dim, 4], np.ones(dim * 4, np.float32))
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["images"], ["flat"]),
         helper.make_node("Gemm", ["flat", "fc.0.weight"], ["embeddings"], transB=1)],
        "reid",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 1, 2, 2])],
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, [1, dim])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    for key, value in {"reid_version": "0.2.0", "architecture": architecture,
                       "embedding_size": str(dim), "normalized": "false", "task": "reid",
                       "input_height": "2", "input_width": "2"}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return model.SerializeToString()


def main():
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((3, 4)).astype(np.float32)
    gallery("cosine.reid", "cosine", vectors)
    gallery("euclidean.reid", "euclidean", vectors)

    ids = np.array([1, 2, 3], np.int64)
    write("npz", "gallery.npz", npz(vectors=vectors, identities=np.array([5, 5, 7], np.int64),
                                    cameras=np.array([0, 1, 2], np.int64), ids=ids))
    write("npz", "no_ids.npz", npz(vectors=vectors[:2], identities=ids[:2], cameras=ids[:2]))

    state = {"conv1.weight": torch.randn(2, 1, 1, 1), "bn1.running_mean": torch.zeros(2),
             "bn1.num_batches_tracked": torch.tensor(3), "fc.weight": torch.randn(2, 2).half()}
    write("state_dict", "zip.pth", torch_bytes(state))
    write("state_dict", "legacy.pth", torch_bytes(state, zipped=False))
    write("state_dict", "checkpoint.pth.tar", torch_bytes({"state_dict": state, "epoch": 3}))
    write("state_dict", "weights.safetensors",
          save_safetensors({k: v.float().numpy() for k, v in state.items()}))

    meta = {"reid.arch": "osnet_x0_25", "reid.num_classes": "10", "reid.version": "0.2.0",
            "reid.task": "reid", "reid.class_names": "[]", "reid.head": "linear",
            "reid.input": "32x16"}
    write("checkpoint", "osnet_x0_25.bpk", burnpack(meta, {"classifier.weight": np.ones((10, 2))}))
    write("checkpoint", "classifier.bpk",
          burnpack(dict(meta, **{"reid.task": "classification",
                                 "reid.class_names": '["cat","dog"]', "reid.num_classes": "2"}), {}))

    write("onnx", "osnet_x0_25.onnx", onnx_model("osnet_x0_25", 8))
    write("onnx", "unknown.onnx", onnx_model("not_a_model", 4))


if __name__ == "__main__":
    main()
