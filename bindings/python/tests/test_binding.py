"""Checks the Python binding against what the Rust API computed (tests/python/binding.rs
writes SPEC.json and runs this with REID_LIBRARY and PYTHONPATH set).

    python bindings/python/tests/test_binding.py SPEC.json
"""

import json
import os
import sys

import numpy as np

import reid

checks = 0


def check(condition, what):
    global checks
    if not condition:
        raise AssertionError(what)
    checks += 1


def raises(status, fn, *args, **kwargs):
    """`fn(...)` must raise ReidError with `status` and a message."""
    try:
        fn(*args, **kwargs)
    except reid.ReidError as e:
        check(e.status == status, f"{fn.__name__}: {e.status} instead of {status} ({e})")
        check(len(e.message) > 0, f"{fn.__name__}: empty message")
        return e
    raise AssertionError(f"{fn.__name__} did not raise {status}")


def close(a, b, tol, what):
    diff = float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
    check(diff <= tol, f"{what}: max |diff| {diff}")


def extractor_checks(spec):
    ex = reid.Extractor(spec["model"])
    expected = np.load(spec["embeddings"])
    check(ex.dim == expected.shape[1], f"dim {ex.dim}")
    check(ex.input_size == tuple(spec["input_size"]), f"input size {ex.input_size}")
    got = ex.extract_files(spec["images"])
    check(got.dtype == np.float32 and got.shape == expected.shape, f"shape {got.shape}")
    close(got, expected, 1e-5, "extract_files vs Rust")
    blobs = [open(p, "rb").read() for p in spec["images"]]
    close(ex.extract_encoded(blobs), expected, 1e-5, "extract_encoded vs Rust")
    rgb = np.load(spec["pixels"]).astype(np.uint8)
    close(ex.extract_images([rgb]), expected[:1], 1e-5, "extract_images (RGB) vs file")
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    close(ex.extract_images([bgr], pixel_format="bgr"), expected[:1], 1e-5, "BGR pixels")
    # A view of a bigger frame: strided rows; and the same crop as a box of that frame.
    h, w, _ = rgb.shape
    frame = np.zeros((h + 10, w + 20, 3), dtype=np.uint8)
    frame[5 : 5 + h, 7 : 7 + w] = rgb
    view = frame[5 : 5 + h, 7 : 7 + w]
    close(ex.extract_images([view]), expected[:1], 1e-5, "strided view")
    close(ex.extract_boxes(frame, [(7, 5, w, h)]), expected[:1], 1e-5, "box crop")
    # Views running backwards in memory are copied, not read out of bounds.
    flipped = np.ascontiguousarray(rgb[::-1])[::-1]
    close(ex.extract_images([flipped]), expected[:1], 1e-5, "a view with negative strides")
    mirrored = np.ascontiguousarray(rgb[:, ::-1])[:, ::-1]
    close(ex.extract_images([mirrored]), expected[:1], 1e-5, "a mirrored view")
    # A tracklet: its images' embeddings averaged (or maxed), then normalized.
    frames = ex.extract_images([rgb, bgr[:, :, ::-1].copy(), view])
    mean = frames.mean(axis=0)
    close(ex.extract_tracklet([rgb, bgr[:, :, ::-1].copy(), view]), mean / np.linalg.norm(mean), 1e-5, "tracklet")
    top = frames.max(axis=0)
    close(ex.extract_tracklet([rgb, view], pooling="max"), top / np.linalg.norm(top), 1e-5, "tracklet max")
    raises("REID_INVALID_ARGUMENT", ex.extract_tracklet, [])
    # Bad input: a clear error, nothing else.
    missing = os.path.join(spec["work"], "missing.jpg")
    e = raises("REID_BAD_IMAGE", ex.extract_files, [missing])
    check("missing.jpg" in e.message, e.message)
    raises("REID_BAD_IMAGE", ex.extract_encoded, [b"not an image"])
    raises("REID_BAD_IMAGE", ex.extract_boxes, frame, [(1000, 1000, 5, 5)])
    raises("REID_IO_ERROR", reid.Extractor, missing.replace(".jpg", ".onnx"))
    try:
        ex.extract_images([rgb.astype(np.float32)])
        raise AssertionError("float pixels accepted")
    except ValueError:
        check(True, "")
    ex.close()
    try:
        ex.dim
        raise AssertionError("closed extractor used")
    except ValueError:
        check(True, "")
    with reid.Extractor(spec["model"], engine="burn", architecture="osnet_x0_25") as burn:
        close(burn.extract_files(spec["images"]), expected, 1e-4, "Burn engine vs ONNX Runtime")
    with reid.Extractor(spec["model"], engine="openvino", openvino={"device": "CPU"}) as ov:
        close(ov.extract_files(spec["images"]), expected, 1e-4, "OpenVINO engine vs ONNX Runtime")
    raises("REID_INVALID_ARGUMENT", reid.Extractor, spec["model"], engine="openvino",
           openvino={"precision": "f64"})
    with reid.Extractor(spec["model"], execution_providers=["cuda:0"]) as fallback:
        check(fallback.execution_provider in ("CPUExecutionProvider", "CUDAExecutionProvider"),
              fallback.execution_provider)
    raises("REID_INVALID_ARGUMENT", reid.Extractor, spec["model"], execution_providers=["rocm"])
    # The same weights exported from Python: the same model.
    exported = os.path.join(spec["work"], "from_python.onnx")
    reid.export_onnx("osnet_x0_25", spec["weights"], exported, *spec["input_size"])
    with reid.Extractor(exported) as again:
        close(again.extract_files(spec["images"]), expected, 1e-5, "export_onnx")
    raises("REID_UNKNOWN_ARCHITECTURE", reid.export_onnx, "no_such_net", spec["weights"], exported)
    # A graph taking raw uint8 BGR pixels (NHWC) embeds as the float export does.
    raw = os.path.join(spec["work"], "uint8.onnx")
    reid.export_onnx("osnet_x0_25", spec["weights"], raw, *spec["input_size"],
                     input="uint8-bgr", layout="nhwc")
    with reid.Extractor(raw) as pixels:
        close(pixels.extract_files(spec["images"]), expected, 1e-4, "uint8 BGR NHWC export")
    raises("REID_INVALID_ARGUMENT", reid.export_onnx, "osnet_x0_25", spec["weights"], raw,
           *spec["input_size"], precision="int8")
    raises("REID_INVALID_ARGUMENT", reid.export_onnx, "osnet_x0_25", spec["weights"], raw,
           *spec["input_size"], precision="fp16")
    raises("REID_INVALID_ARGUMENT", reid.export_onnx, "osnet_x0_25", spec["weights"], raw,
           *spec["input_size"], fp16_io=True)
    try:
        reid.export_onnx("osnet_x0_25", spec["weights"], raw, input="uint16")
        raise AssertionError("an unknown input accepted")
    except ValueError:
        check(True, "")
    return expected


def crop_checks(spec, embeddings):
    """Crops kept with the entries: after a model change, re-embedding is one call."""
    n, dim = embeddings.shape
    kept = reid.Gallery(dim)
    rng = np.random.default_rng(5)
    ids = kept.add_batch(rng.normal(size=(n, dim)).astype(np.float32), identities=list(range(n)))
    crops = []
    for path in spec["images"]:
        with open(path, "rb") as f:
            crops.append(f.read())
    raises("REID_INVALID_ARGUMENT", kept.set_crop, int(ids[0]), crops[0])
    kept.keep_crops(1 << 20)
    raises("REID_INVALID_ARGUMENT", kept.set_crop, int(ids[0]), b"not an image")
    for entry_id, crop in zip(ids[1:], crops[1:]):
        kept.set_crop(int(entry_id), crop)
    check(kept.crop(int(ids[0])) is None, "an entry without a crop")
    check(kept.crop(int(ids[1])) == crops[1], "a crop read back")
    with reid.Extractor(spec["model"]) as ex:
        raises("REID_INVALID_ARGUMENT", kept.reembed, ex)
        kept.set_crop(int(ids[0]), crops[0])
        check(kept.reembed(ex) == n, "re-embedded every entry")
        fingerprint = ex.fingerprint
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    for entry_id, want in zip(ids, unit):
        close(kept.get(int(entry_id))[0], want, 1e-5, "a re-embedded entry")
    raises("REID_MODEL_MISMATCH", kept.bind_model, "f" * 64)
    kept.bind_model(fingerprint)


def gallery_checks(spec, embeddings):
    work = spec["work"]
    n, dim = embeddings.shape
    g = reid.Gallery(dim)
    with reid.Extractor(spec["model"]) as ex:
        fingerprint = ex.fingerprint
    check(len(fingerprint) == 64 and int(fingerprint, 16) >= 0, f"fingerprint {fingerprint}")
    g.bind_model(fingerprint)
    with reid.Extractor(spec["model"]) as ex:
        check(ex.calibration is None, "an export carries no calibration")
        raises("REID_NOT_FOUND", g.adopt_calibration, ex)
    ids = g.add_batch(embeddings, identities=[10, 11, 12, 13], cameras=[1, 2, 1, 2])
    check(len(g) == n and g.dim == dim and len(set(ids.tolist())) == n, "add_batch")
    sims = embeddings @ embeddings.T
    for i, matches in enumerate(g.search_batch(embeddings, k=3)):
        order = np.argsort(-sims[i], kind="stable")[:3]
        check([m.identity for m in matches] == [10 + j for j in order], f"search order {i}")
        close([m.score for m in matches], sims[i][order], 1e-5, f"search scores {i}")
    check(g.search(embeddings[0], k=2, exclude_camera=1)[0].camera == 2, "exclude_camera")
    best = g.search(embeddings[0], k=4, min_score=0.999)
    check([m.identity for m in best] == [10], f"min_score {best}")
    check(g.ids().tolist() == sorted(ids.tolist()), f"ids {g.ids()}")
    raises("REID_MODEL_MISMATCH", g.bind_model, "f" * 64)
    g.bind_model(fingerprint)
    crop_checks(spec, embeddings)
    # Calibration: two identities of two rows, half of the four different-identity pairs
    # allowed through; counted here with numpy.
    raises("REID_INVALID_ARGUMENT", g.search, embeddings[0], 3, None, False, None, True)
    threshold, tar = g.calibrate(embeddings, [1, 1, 2, 2], far=0.5)
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    impostor = sorted((float(unit[i] @ unit[j]) for i in (0, 1) for j in (2, 3)), reverse=True)
    genuine = [float(unit[0] @ unit[1]), float(unit[2] @ unit[3])]
    # Just past the third most alike impostor pair (numpy rounds its own way: 1e-5).
    check(abs(threshold - impostor[2]) <= 1e-5 and impostor[1] > threshold,
          f"calibrated threshold {threshold} against {impostor}")
    close([tar], [sum(s >= threshold for s in genuine) / 2], 1e-9, "true-accept rate")
    passed = g.search(embeddings[0], k=4, calibrated=True)
    check(all(m.score >= threshold for m in passed) and len(passed) >= 1, f"calibrated {passed}")
    # Entries added without a time are outside every time window.
    check(g.search(embeddings[0], k=4, time_window=(0.0, 1e9)) == [], "time window")
    seen = g.add(embeddings[1], 77, 3, time=(100.0, 110.0))
    in_window = g.search(embeddings[0], k=4, time_window=(105.0, 200.0))
    check([m.id for m in in_window] == [seen], f"timed entry {in_window}")
    check(g.search(embeddings[0], k=4, time_window=(111.0, 200.0)) == [], "outside the window")
    raises("REID_INVALID_ARGUMENT", g.add, embeddings[1], 78, 3, (2.0, 1.0))
    g.remove(seen)
    raises("REID_INVALID_ARGUMENT", g.search, embeddings[0], 4, None, False, None, False, (5, 1))
    check(int(ids[0]) in g and 2**62 not in g, "contains")
    check(g.metric == "cosine", f"metric {g.metric}")
    raises("REID_INVALID_ARGUMENT", g.add, embeddings[0], 1, -1)
    check(len(g) == n, "a negative camera adds nothing")
    vector, identity, camera = g.get(int(ids[2]))
    check(identity == 12 and camera == 1, "get")
    close(vector, embeddings[2], 1e-6, "get vector")
    raises("REID_DIMENSION_MISMATCH", g.add, np.zeros(dim + 1, np.float32), 1)
    raises("REID_INVALID_ARGUMENT", g.add, np.full(dim, np.nan, np.float32), 1)
    check(len(g) == n, "failed adds change nothing")
    g.update(int(ids[3]), embeddings[0], 99, 5)
    check(g.get(int(ids[3]))[1:] == (99, 5), "update")
    g.remove(int(ids[3]))
    raises("REID_NOT_FOUND", g.remove, int(ids[3]))
    check(g.remove_identity(12) == 1 and len(g) == n - 2, "remove_identity")

    saved = os.path.join(work, "people.reidg")
    g.save(saved)
    loaded = reid.Gallery.load(saved)
    check(len(loaded) == len(g), "save + load")
    npz = os.path.join(work, "people.npz")
    loaded.export_npz(npz)
    arrays = np.load(npz)
    check(sorted(arrays["identities"].tolist()) == [10, 11], "export_npz identities")
    fresh = reid.Gallery(dim)
    check(fresh.import_npz(npz) == 2 and len(fresh) == 2, "import_npz")

    durable = os.path.join(work, "durable.reidg")
    with reid.Gallery.create(durable, dim) as d:
        d.add(embeddings[1], 7, 3)
    with reid.Gallery.open(durable) as d:
        check(len(d) == 1 and d.search(embeddings[1], k=1)[0].identity == 7, "durable file")
    raises("REID_GALLERY_ERROR", reid.Gallery.create, durable, dim)
    with open(os.path.join(work, "corrupt.reidg"), "wb") as f:
        f.write(b"not a gallery")
    raises("REID_GALLERY_ERROR", reid.Gallery.open, os.path.join(work, "corrupt.reidg"))


def identity_store_checks(spec):
    look = np.eye(4, dtype=np.float32)
    a = np.stack([look[0] + 0.1 * look[1], look[0] - 0.1 * look[1]])
    store = reid.IdentityStore(
        4, threshold=0.8, min_transit_seconds=60, links=[(0, 1, 0.0)]
    )
    first = store.observe(0, 1, 0.0, 10.0, a)
    check(first.created and first.score is None, f"first track {first}")
    linked = store.observe(1, 1, 5.0, 15.0, a[:1])
    check(linked.identity == first.identity and linked.score > 0.99, f"linked {linked}")
    far = store.observe(2, 1, 20.0, 30.0, a)
    check(far.created and far.identity != first.identity, f"too far to walk {far}")
    weighted = store.observe(3, 4, 500.0, 501.0, np.stack([look[2], look[3]]), quality=[0, 1])
    check(weighted.created, f"someone else {weighted}")
    check(store.identity_of(1, 1) == first.identity, "identity_of")
    try:
        store.identity_of(9, 9)
        check(False, "identity_of an unknown track raises KeyError")
    except KeyError:
        pass
    seen = store.sightings(first.identity)
    check([(s.camera, s.track, s.start) for s in seen] == [(0, 1, 0.0), (1, 1, 5.0)],
          f"sightings {seen}")
    check(store.merge(first.identity, far.identity) == 1, "merge")
    check(len(store.sightings(first.identity)) == 3, "merged sightings")
    split = store.split(2, 1)
    check(split not in (first.identity, far.identity), "split")
    raises("REID_NOT_FOUND", store.split, 2, 99)
    raises("REID_INVALID_ARGUMENT", store.observe, -1, 1, 0.0, 1.0, a)
    raises("REID_INVALID_ARGUMENT", store.observe, 0, 2, 3.0, 1.0, a)
    raises("REID_INVALID_ARGUMENT", store.configure, 1.5)
    raises("REID_INVALID_ARGUMENT", reid.IdentityStore, 4, None, 0)
    uncalibrated = reid.IdentityStore(4)
    raises("REID_INVALID_ARGUMENT", uncalibrated.observe, 0, 1, 0.0, 1.0, a)
    rng = np.random.default_rng(0)
    people = np.repeat(np.arange(10), 3)
    vectors = (np.eye(4, dtype=np.float32)[people % 4] * 3
               + rng.normal(size=(30, 4)).astype(np.float32) + (people // 4)[:, None])
    threshold, tar = uncalibrated.calibrate(vectors, people, far=0.1)
    check(-1 <= threshold <= 1 and 0 <= tar <= 1, f"calibration {threshold} {tar}")
    check(uncalibrated.observe(0, 1, 0.0, 1.0, a).created, "calibrated store")

    durable = os.path.join(spec["work"], "identities.db")
    with reid.IdentityStore.create(durable, 4, threshold=0.8) as d:
        kept = d.observe(0, 7, 0.0, 1.0, a).identity
    with reid.IdentityStore.open(durable) as d:
        check(d.identity_of(0, 7) == kept and d.dim == 4, "durable identity store")
    raises("REID_GALLERY_ERROR", reid.IdentityStore.create, durable, 4)


def database_checks(spec, embeddings):
    """A gallery and an identity store in PostgreSQL (when the test run has a server): the
    same results as in memory."""
    if not spec.get("postgres"):
        print("database checks skipped: no REID_POSTGRES_URL")
        return
    gallery_location, identities_location = spec["postgres"]
    n, dim = embeddings.shape
    memory = reid.Gallery(dim)
    with reid.Gallery.create(gallery_location, dim) as g:
        for store in (memory, g):
            store.add_batch(embeddings, identities=[1, 2, 3, 4], cameras=[0, 1, 0, 1])
            store.add(embeddings[0], 9, 2, time=(10.0, 20.0))
        check(len(g) == n + 1, "database gallery size")
        for q in embeddings:
            check(g.search(q, k=3) == memory.search(q, k=3), "database search = memory search")
            check(g.search(q, k=3, time_window=(15, 16)) == memory.search(q, k=3, time_window=(15, 16)),
                  "database time window")
    with reid.Gallery.open(gallery_location) as g:
        check(len(g) == n + 1, "database gallery reopened")
    a = embeddings[:2]
    with reid.IdentityStore.create(identities_location, dim, threshold=0.5,
                                   min_transit_seconds=60) as store:
        first = store.observe(0, 1, 0.0, 10.0, a)
        again = store.observe(1, 1, 100.0, 110.0, a)
        check(first.created and again.identity == first.identity, f"database store {again}")
        far = store.observe(2, 1, 20.0, 30.0, a)
        check(far.created, f"database store topology {far}")
    with reid.IdentityStore.open(identities_location) as store:
        check(len(store.sightings(first.identity)) == 2, "database store reopened")


def logging_checks(spec):
    lines = []
    reid.set_log_callback(lambda level, message: lines.append((level, message)), "warning")
    reid.Extractor(spec["warning_model"])
    unused = spec["unused_initializer"]
    check(any(level == "warning" and unused in line for level, line in lines), f"log {lines}")
    reid.set_log_callback(None)
    before = len(lines)
    reid.Extractor(spec["warning_model"])
    check(len(lines) == before, "no lines after the callback was removed")
    try:
        reid.set_log_callback(print, "loud")
        raise AssertionError("an unknown level was accepted")
    except ValueError:
        check(True, "unknown level")


def classifier_checks(spec):
    c = reid.Classifier(spec["classifier"])
    check(c.num_classes == len(spec["class_names"]), "num_classes")
    check(c.class_names == spec["class_names"], f"class names {c.class_names}")
    check(not c.is_multilabel, "single-label")
    for rows in (
        c.classify_files(spec["images"], k=3),
        c.classify_encoded([open(p, "rb").read() for p in spec["images"]], k=3),
    ):
        for row, want in zip(rows, spec["top3"]):
            check([p.index for p in row] == [w[0] for w in want], f"top-3 {row} vs {want}")
            close([p.score for p in row], [w[1] for w in want], 1e-4, "top-3 scores")
            check(row[0].name == spec["class_names"][want[0][0]], "prediction name")
    all_classes = c.classify_files(spec["images"][:1], k=100)[0]
    check(len(all_classes) == c.num_classes, "k above the class count")
    close(sum(p.score for p in all_classes), 1.0, 1e-4, "softmax sums to 1")
    raises("REID_INVALID_ARGUMENT", reid.Classifier, spec["model"])


def finetuner_checks(spec, embeddings):
    work = os.path.join(spec["work"], "finetune")
    rng = np.random.default_rng(3)
    f = reid.Finetuner("osnet_x0_25", spec["weights"], work)
    # Eight identities, each a colour, four noisy images of it.
    for identity in range(8):
        colour = rng.integers(0, 256, size=3)
        for k in range(4):
            img = np.clip(colour + rng.normal(0, 20, size=(64, 32, 3)), 0, 255).astype(np.uint8)
            f.add_image(img, identity, camera=k % 2)
    check(len(f) == 32, f"{len(f)} images")
    f.set_training(8, 0.0003, 64, 32)
    f.set_epochs(1)
    seen = []
    raises("REID_CANCELLED", f.run, lambda p: seen.append(p) or True)
    check(len(seen) == 1 and seen[0].step == 1 and seen[0].epochs == 1, f"progress {seen}")

    class Stop(Exception):
        pass

    def fail(_progress):
        raise Stop()

    try:
        f.run(fail)
        raise AssertionError("the callback's exception was lost")
    except Stop:
        check(True, "")
    reports = []
    f.run(reports.append)
    check(reports[-1].end_of_epoch and reports[-1].epoch == 1, f"last report {reports[-1]}")
    check(all(np.isfinite(r.loss) for r in reports), "finite losses")
    model = os.path.join(work, "model.onnx")
    f.export_onnx(model)
    with f.new_extractor() as ex, reid.Extractor(model) as exported:
        a = ex.extract_files(spec["images"][:2])
        b = exported.extract_files(spec["images"][:2])
        close(a, b, 1e-5, "finetuned extractor vs its export")
        check(ex.input_size == (64, 32), f"finetuned input {ex.input_size}")
    raises("REID_INVALID_ARGUMENT", f.evaluate)


def bad_option_checks(spec):
    """The shared table of bad options: the library's own message for each, as in Rust and C."""
    model = spec["model"]
    huge = 2**64 - 1
    gallery = reid.Gallery(4)
    query = np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32)
    cases = {
        "sessions0": lambda: reid.Extractor(model, threads=1, sessions=0),
        "max_batch0": lambda: reid.Extractor(model, max_batch=0),
        "input_size_zero": lambda: reid.Extractor(model, input_size=(0, 128)),
        "input_size_huge": lambda: reid.Extractor(model, input_size=(huge, huge)),
        "std_zero": lambda: reid.Extractor(
            model, scale=1.0 / 255.0, mean=(0.5, 0.5, 0.5), std=(0.0, 0.2, 0.2)
        ),
        "unknown_device": lambda: reid.Extractor(model, device="abacus:3"),
        "search_k0": lambda: gallery.search(query, k=0),
        "search_nan_min_score": lambda: gallery.search(query, k=5, min_score=float("nan")),
    }
    check(sorted(cases) == sorted(c["case"] for c in spec["bad_options"]), "bad-option table")
    for case in spec["bad_options"]:
        try:
            cases[case["case"]]()
        except reid.ReidError as e:
            check(e.message == case["message"], f"{case['case']}: {e.message!r} != {case['message']!r}")
            continue
        raise AssertionError(f"{case['case']} was accepted")


def main():
    with open(sys.argv[1]) as fh:
        spec = json.load(fh)
    check(reid.version() == spec["version"], f"version {reid.version()}")
    embeddings = extractor_checks(spec)
    gallery_checks(spec, embeddings)
    identity_store_checks(spec)
    database_checks(spec, embeddings)
    logging_checks(spec)
    classifier_checks(spec)
    finetuner_checks(spec, embeddings)
    bad_option_checks(spec)
    print(f"python binding: all checks passed ({checks})")


if __name__ == "__main__":
    main()
