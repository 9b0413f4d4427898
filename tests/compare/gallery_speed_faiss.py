"""faiss's side of `reid gallery bench`: exact top-k (IndexFlatIP on L2-normalized rows, i.e.
cosine) and HNSW (IndexHNSWFlat, M 16, efConstruction 64 as pgvector's defaults) on the same
.npy files, queries per second and HNSW's recall@k against the exact results.

    python tests/compare/gallery_speed_faiss.py VECTORS.npy QUERIES.npy [K] [THREADS]

Needs numpy and faiss-cpu (PyPI); run outside CI, right after `reid gallery bench`, so that
both numbers come from the same state of the machine.
"""

import sys
import time

import faiss
import numpy as np


def normalized(a):
    a = np.ascontiguousarray(a, dtype=np.float32)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def main():
    vectors = normalized(np.load(sys.argv[1]))
    queries = normalized(np.load(sys.argv[2]))
    k = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    faiss.omp_set_num_threads(int(sys.argv[4]) if len(sys.argv) > 4 else 2)
    n, d = vectors.shape
    print(f"faiss {faiss.__version__}: {n} entries, {d}-d; {len(queries)} queries, top {k}")

    flat = faiss.IndexFlatIP(d)
    flat.add(vectors)
    flat.search(queries[:1], k)
    started = time.perf_counter()
    _, exact = flat.search(queries, k)
    rate = len(queries) / (time.perf_counter() - started)
    print(f"IndexFlatIP, {len(queries)} queries in one call: {rate:.1f} queries/s")
    started = time.perf_counter()
    for q in queries:
        flat.search(q[None, :], k)
    rate = len(queries) / (time.perf_counter() - started)
    print(f"IndexFlatIP, one query per call: {rate:.1f} queries/s")

    hnsw = faiss.IndexHNSWFlat(d, 16, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 64
    started = time.perf_counter()
    hnsw.add(vectors)
    print(f"IndexHNSWFlat built in {time.perf_counter() - started:.1f} s")
    for ef in (40, 100, 200):
        hnsw.hnsw.efSearch = ef
        started = time.perf_counter()
        found = [hnsw.search(q[None, :], k)[1][0] for q in queries]
        rate = len(queries) / (time.perf_counter() - started)
        recall = np.mean([len(set(f) & set(e)) / k for f, e in zip(found, exact)])
        print(f"IndexHNSWFlat, efSearch {ef}, one query per call: {rate:.1f} queries/s, "
              f"recall@{k} {recall:.3f}")


if __name__ == "__main__":
    main()
