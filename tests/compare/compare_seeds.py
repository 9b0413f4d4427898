#!/usr/bin/env python3
"""reid against torchreid 0.2.5 over several synthetic datasets and several training seeds, run
by hand, never in CI (it needs PyPI torch + torchreid==0.2.5, scipy, and a built `reid`).

A grid: data seeds D (one `reid synth` set each) x training seeds S x sides, every run in a
fresh folder and a fresh process, one JSON line per run in WORK/results.jsonl (an interrupted
grid continues where it stopped), then a summary (WORK/summary.md, .json): mean ± std per side,
per set and pooled, the difference reid − torchreid with its 95 % confidence interval, Welch's
t-test (pooled and per set), a test stratified by set, and Mann-Whitney U.

    python tests/compare/compare_seeds.py --reid target/release/reid --work /tmp/cmp \
        --data-seeds 0 1 2 --train-seeds 1 2 3 --epochs 20 --height 128 --width 64 \
        --metric cosine [--ids 400 --images-per-camera 2] [--cross-eval] [--lossless]
    python tests/compare/compare_seeds.py --work /tmp/cmp --summarize-only

The recipe (both sides): osnet_x0_25 from scratch, random flip + random crop, batch 32,
label-smoothed cross-entropy, AMSGrad (torchreid's `build_optimizer` defaults) with weight decay
5e-4, cosine schedule, evaluated after the last epoch.

`--sides` names the sides to run: `torchreid`, and any other name is a reid run of the `--reid`
binary under that name (two reid builds against the same torchreid runs: `--sides torchreid
old --reid OLD`, then `--sides reid --reid NEW`); the summary compares every side with
torchreid. `--cross-eval` also scores each side's final weights with
the other side's evaluation (equal numbers rule the evaluation out as the cause of a gap);
`--lossless` stores the images as PNG bytes under their .jpg names, so both decoders see the
same pixels (PIL's decoding of the JPEG set: torchreid's runs on it equal its runs on the JPEG
set). `--torchreid-init` starts the reid sides from torchreid's initial weights for the same
seed (written by `--_torchreid_init` beside each run's folder), the data order and augmentation
still reid's: the initialization and the rest of the pipeline apart.

The side `torchreid_replay` is torchreid (its model, initialization, optimizer, schedule and
evaluation) trained on reid's batches: `--replay-batches` names the built
`examples/training_batches.rs`, which writes the exact images and labels `reid train` draws for
the same config and seed (decoded, augmented, normalized), and torchreid's engine reads them in
place of its DataLoader. Paired by seed with a reid side on torchreid's initialization
(`--torchreid-init`), only the arithmetic differs; against plain torchreid, only the data
streams (reid's sampler, augmentation draws and pixels against torchreid's). The side
`torchreid_order` takes only reid's order of the images from it (`--order`) and augments them with
torchreid's own transforms: reid's sampler apart from its augmentation.
"""
import argparse
import glob
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.abspath(__file__)
# torchreid parses pid/camera with this regex over the WHOLE path (market1501.py:66,70), so
# no folder above the images may contain it (e.g. `seed_0_c6/` would label every image 0, c6).
TORCHREID_NAME = re.compile(r"([-\d]+)_c(\d)")


def data_root(args, d):
    png = "-png" if args.lossless else ""
    root = os.path.join(args.work, "data", f"ids{args.ids}-cams{args.cameras}-"
                        f"per{args.images_per_camera}-seed{d}{png}")
    if TORCHREID_NAME.search(root):
        sys.exit(f"{root} matches torchreid's file-name pattern; choose another --work")
    return root


def make_data(args, d):
    root = data_root(args, d)
    target = os.path.join(root, "market1501")
    meta = os.path.join(target, "synth.json")
    if os.path.isfile(meta):
        m = json.load(open(meta))
        if (m["ids"], m["cameras"], m["seed"]) != (args.ids, args.cameras, d):
            sys.exit(f"{target} holds another synthetic set: {m}")
        return root
    if os.path.isdir(target):
        shutil.rmtree(target)  # a partial set
    subprocess.run([args.reid, "synth", target, "--ids", str(args.ids), "--cameras",
                    str(args.cameras), "--images-per-camera", str(args.images_per_camera),
                    "--seed", str(d)], check=True)
    if args.lossless:
        # Same pixels on both sides: PIL's decoding of each JPEG, stored as PNG bytes under
        # the same .jpg name (torchreid globs *.jpg; PIL and reid's decoder both sniff the
        # content). Removes the JPEG decoders' difference (image crate vs libjpeg-turbo:
        # up to 3 levels on ~1 % of values).
        from PIL import Image
        meta_bytes = open(meta, "rb").read()
        for f in glob.glob(os.path.join(target, "*", "*.jpg")):
            Image.open(f).convert("RGB").save(f + ".tmp", format="PNG")
            os.replace(f + ".tmp", f)
        with open(meta, "wb") as m:
            m.write(meta_bytes)
    return root


def reid_config(args, root, save_dir, seed, weights=None):
    return [*([f"model.load_weights={weights}"] if weights else []),
        f"data.root={root}", f"data.height={args.height}", f"data.width={args.width}",
        "data.transforms=[random_flip, random_crop]", f"data.save_dir={save_dir}",
        "train.optim=amsgrad", f"train.lr={args.lr}", "train.weight_decay=0.0005",
        f"train.max_epoch={args.epochs}", "train.batch_size=32", "train.lr_scheduler=cosine",
        f"train.seed={seed}", f"test.dist_metric={args.metric}", "test.eval_freq=-1",
        "test.export_onnx=false", "loss.name=softmax", "loss.softmax.label_smooth=true",
    ]


def run_reid(args, root, save_dir, seed):
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    weights = None
    if args.torchreid_init:
        weights = save_dir + "-torchreid-init.pth"  # outside save_dir, which reid resumes from
        python_child(args, "--_torchreid_init", ["--root", root, "--seed", str(seed),
                                                 "--weights", weights])
    started = time.time()
    subprocess.run([args.reid, "train", *reid_config(args, root, save_dir, seed, weights)],
                   check=True,
                   env=env, stdout=subprocess.DEVNULL if args.quiet else None)
    seconds = time.time() - started
    with open(os.path.join(save_dir, "metrics.jsonl")) as f:
        history = [json.loads(line) for line in f]
    last = history[-1]
    assert last["epoch"] == args.epochs, f"{save_dir}: last logged epoch {last['epoch']}"
    e = last["eval"][0]
    return {"mAP": e["mAP"], "rank1": e["rank1"], "rank5": e.get("rank5"),
            "seconds": seconds,
            "loss_per_epoch": [h.get("loss") for h in history],
            "acc_per_epoch": [h.get("accuracy") for h in history]}


def torchreid_start(a):
    """torchreid's data and freshly initialized model for seed a.seed, drawn in the order a run
    draws them (so --_torchreid_init writes the weights that run --_torchreid starts from)."""
    import random
    import warnings
    warnings.filterwarnings("ignore")
    import numpy as np
    import torch
    import torchreid
    random.seed(a.seed)
    np.random.seed(a.seed)
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    data = torchreid.data.ImageDataManager(
        root=a.root, sources="market1501", targets="market1501", height=a.height,
        width=a.width, transforms=["random_flip", "random_crop"], batch_size_train=32,
        batch_size_test=100, workers=a.workers, use_gpu=False)
    model = torchreid.models.build_model(
        "osnet_x0_25", num_classes=data.num_train_pids, loss="softmax", pretrained=False)
    return data, model


def torchreid_init(a):
    """Writes torchreid's initial weights for seed a.seed to a.weights (--_torchreid_init)."""
    import torch
    _, model = torchreid_start(a)
    torch.save({"state_dict": model.state_dict()}, a.weights)
    print("RESULT {}", flush=True)


class ReplayedBatches:
    """torchreid's train loader replaced by the batches `examples/training_batches.rs` writes:
    `batches` per epoch, each as {"img", "pid"} tensors, read from `stream` in order."""

    def __init__(self, stream, batches, shape):
        self.stream, self.batches, self.shape = stream, batches, shape

    def __len__(self):
        return self.batches

    def read(self, size):
        data = self.stream.read(size)
        assert len(data) == size, f"the batch stream ended ({len(data)} of {size} bytes)"
        return data

    def __iter__(self):
        import numpy as np
        import torch
        for _ in range(self.batches):
            n = int.from_bytes(self.read(4), "little")
            pids = np.frombuffer(self.read(8 * n), dtype="<i8")
            c, h, w = self.shape
            imgs = np.frombuffer(self.read(4 * n * c * h * w), dtype="<f4").reshape(n, c, h, w)
            yield {"img": torch.from_numpy(imgs.copy()), "pid": torch.from_numpy(pids.copy())}


class ReidOrder:
    """A batch sampler giving, epoch after epoch, the whole batches of reid's order of the
    training images (`examples/training_batches --order`), as indices of torchreid's dataset."""

    def __init__(self, text, dataset, batch_size):
        lines = text.splitlines()
        count = int(lines[0])
        position = {os.path.realpath(item[0]): i for i, item in enumerate(dataset.train)}
        to_torchreid = [position[os.path.realpath(p)] for p in lines[1:1 + count]]
        self.epochs = [[to_torchreid[int(i)] for i in line.split()]
                       for line in lines[1 + count:]]
        self.batch_size, self.epoch = batch_size, 0

    def __len__(self):
        return len(self.epochs[0]) // self.batch_size

    def __iter__(self):
        order = self.epochs[self.epoch]
        self.epoch += 1
        for b in range(len(self)):
            yield order[b * self.batch_size:(b + 1) * self.batch_size]


def torchreid_one(a):
    """One torchreid run, in its own process (--_torchreid); prints one JSON line. With
    a.replay_batches, it trains on reid's batches for the same config and seed; with a.order,
    on reid's order of the images, augmented by torchreid."""
    import torch
    import torchreid
    data, model = torchreid_start(a)
    producer = None
    if a.replay_batches:
        config = reid_config(a, a.root, os.path.join(a.save_dir, "unused"), a.seed)
    if a.order:
        text = subprocess.run([a.replay_batches, "--order", *config], check=True,
                              stdout=subprocess.PIPE, text=True).stdout
        loader = data.train_loader
        data.train_loader = torch.utils.data.DataLoader(
            loader.dataset, batch_sampler=ReidOrder(text, loader.dataset, loader.batch_size),
            num_workers=loader.num_workers, pin_memory=False)
    elif a.replay_batches:
        env = dict(os.environ, RAYON_NUM_THREADS="1")
        producer = subprocess.Popen([a.replay_batches, *config], stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, env=env)
        # torchreid's RandomSampler drops the last partial batch, as reid does.
        data.train_loader = ReplayedBatches(producer.stdout, len(data.train_loader),
                                            (3, a.height, a.width))
    optimizer = torchreid.optim.build_optimizer(model, optim="amsgrad", lr=a.lr,
                                                weight_decay=5e-4)
    scheduler = torchreid.optim.build_lr_scheduler(optimizer, lr_scheduler="cosine",
                                                   max_epoch=a.epochs)
    engine = torchreid.engine.ImageSoftmaxEngine(
        data, model, optimizer=optimizer, scheduler=scheduler, use_gpu=False, label_smooth=True)
    started = time.time()
    # engine.run ends with the final test (engine.py: "=> Final test") and saves
    # save_dir/model/model.pth.tar-EPOCHS.
    engine.run(save_dir=a.save_dir, max_epoch=a.epochs, eval_freq=-1, print_freq=10000,
               dist_metric=a.metric)
    seconds = time.time() - started
    if a.order:
        assert data.train_loader.batch_sampler.epoch == a.epochs, "reid's order went unused"
    if producer is not None:
        assert producer.stdout.read(1) == b"", "reid drew more batches than torchreid read"
        assert producer.wait() == 0, "examples/training_batches failed"
    result = torchreid_eval(engine, a.metric, a.save_dir)
    result["seconds"] = seconds
    print("RESULT " + json.dumps(result), flush=True)


def torchreid_eval(engine, metric, save_dir):
    engine.set_model_mode("eval")
    loaders = engine.test_loader["market1501"]
    import numpy as np
    import torch
    from torchreid.reid import metrics
    feats = {}
    for split in ["query", "gallery"]:
        fs, pids, cams = [], [], []
        with torch.no_grad():
            for data in loaders[split]:
                imgs, p, c = engine.parse_data_for_eval(data)
                fs.append(engine.extract_features(imgs).cpu())
                pids += p.tolist()
                cams += c.tolist()
        feats[split] = (torch.cat(fs), np.asarray(pids), np.asarray(cams))
    (qf, qp, qc), (gf, gp, gc) = feats["query"], feats["gallery"]
    # torchreid's own feature names, which `reid eval --features` reads
    np.savez(os.path.join(save_dir, "features.npz"), qf=qf.numpy(), gf=gf.numpy(), q_pids=qp,
             g_pids=gp, q_camids=qc, g_camids=gc)
    dist = metrics.compute_distance_matrix(qf, gf, metric).numpy()
    cmc, mAP = metrics.evaluate_rank(dist, qp, gp, qc, gc, use_metric_cuhk03=False)
    return {"mAP": float(mAP), "rank1": float(cmc[0]), "rank5": float(cmc[4])}


def torchreid_score_weights(a):
    """torchreid's test loop on weights from reid (`reid convert` output); one JSON line."""
    import warnings
    warnings.filterwarnings("ignore")
    import torch
    import torchreid
    from safetensors.torch import load_file
    torch.set_num_threads(a.threads)
    data = torchreid.data.ImageDataManager(
        root=a.root, sources="market1501", targets="market1501", height=a.height,
        width=a.width, batch_size_test=100, workers=a.workers, use_gpu=False)
    model = torchreid.models.build_model(
        "osnet_x0_25", num_classes=data.num_train_pids, loss="softmax", pretrained=False)
    state = model.state_dict()
    loaded = load_file(a.weights)
    missing = [k for k in state if k not in loaded and "num_batches_tracked" not in k]
    assert not missing, f"weights lack {missing[:5]}"
    state.update({k: v for k, v in loaded.items() if k in state})
    model.load_state_dict(state)
    engine = torchreid.engine.ImageSoftmaxEngine(data, model, optimizer=None, use_gpu=False)
    print("RESULT " + json.dumps(torchreid_eval(engine, a.metric, a.save_dir)), flush=True)


def python_child(args, mode, extra):
    cmd = [sys.executable, HERE, mode, "--threads", str(args.threads),
           "--workers", str(args.workers), "--height", str(args.height),
           "--width", str(args.width), "--metric", args.metric, "--epochs", str(args.epochs),
           "--lr", str(args.lr), *extra]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    out = subprocess.run(cmd, check=True, env=env, stdout=subprocess.PIPE, text=True).stdout
    if not args.quiet:
        print(out)
    line = [ln for ln in out.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def run_torchreid(args, root, save_dir, seed):
    return python_child(args, "--_torchreid", ["--root", root, "--save-dir", save_dir,
                                               "--seed", str(seed)])


def run_torchreid_replay(args, root, save_dir, seed, order=False):
    if not args.replay_batches:
        sys.exit("the torchreid_replay and torchreid_order sides need --replay-batches "
                 "(examples/training_batches)")
    return python_child(args, "--_torchreid", ["--root", root, "--save-dir", save_dir,
                                               "--seed", str(seed),
                                               "--replay-batches", args.replay_batches,
                                               *(["--order"] if order else [])])


def run_torchreid_order(args, root, save_dir, seed):
    return run_torchreid_replay(args, root, save_dir, seed, order=True)


def cross_eval(args, side, root, save_dir):
    """The other side's evaluation of this run's final weights."""
    if side == "reid":
        weights = os.path.join(save_dir, "reid.safetensors")
        subprocess.run([args.reid, "convert", "--arch", "osnet_x0_25", "--weights",
                        os.path.join(save_dir, "best.bpk"), "-o", weights], check=True,
                       stdout=subprocess.DEVNULL)
        r = python_child(args, "--_torchreid_score", ["--root", root, "--save-dir", save_dir,
                                                      "--weights", weights])
        return {"xeval_mAP": r["mAP"], "xeval_rank1": r["rank1"]}
    weights = sorted(glob.glob(os.path.join(save_dir, "model", "model.pth.tar-*")),
                     key=lambda p: int(p.rsplit("-", 1)[1]))[-1]
    out = subprocess.run(
        [args.reid, "eval", "--weights", weights, "--json",
         *reid_config(args, root, os.path.join(save_dir, "reid-eval"), 1)],
        check=True, stdout=subprocess.PIPE, text=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    feats = subprocess.run(  # torchreid's features scored by reid's metric code alone
        [args.reid, "eval", "--features", os.path.join(save_dir, "features.npz"), "--metric",
         args.metric, "--json"], check=True, stdout=subprocess.PIPE, text=True).stdout
    f = json.loads(feats)
    return {"xeval_mAP": r["mAP"], "xeval_rank1": r["rank1"],
            "reid_metrics_on_torchreid_features_mAP": f["mAP"]}


def versions(args):
    v = {"python": sys.version.split()[0]}
    try:
        v["reid"] = subprocess.run([args.reid, "--version"], stdout=subprocess.PIPE,
                                   text=True).stdout.strip()
    except OSError:
        pass
    try:
        v["git"] = subprocess.run(["git", "rev-parse", "HEAD"], stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True,
                                  cwd=os.path.dirname(HERE)).stdout.strip()
    except OSError:
        pass
    return v


def load_results(path):
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def key(r):
    return (r["side"], r["data_seed"], r["train_seed"], r["epochs"], r["height"], r["width"],
            r["metric"], r["ids"], r["cameras"], r.get("images_per_camera", 4), r["lr"],
            r.get("lossless", False))


def run_grid(args):
    os.makedirs(args.work, exist_ok=True)
    path = os.path.join(args.work, "results.jsonl")
    done = {key(r) for r in load_results(path)}
    info = versions(args)
    for d in args.data_seeds:
        root = make_data(args, d)
        for s in args.train_seeds:
            for side in args.sides:
                rec = {"side": side, "data_seed": d, "train_seed": s, "epochs": args.epochs,
                       "lossless": args.lossless,
                       "height": args.height, "width": args.width, "metric": args.metric,
                       "ids": args.ids, "cameras": args.cameras,
                       "images_per_camera": args.images_per_camera, "lr": args.lr}
                if args.torchreid_init and side != "torchreid":
                    rec["init"] = "torchreid"
                if key(rec) in done:
                    continue
                tag = (f"{side}-d{d}-s{s}-e{args.epochs}-{args.height}x{args.width}-{args.metric}"
                       + ("-png" if args.lossless else ""))
                save_dir = os.path.join(args.work, "runs", tag)
                if os.path.isdir(save_dir):
                    shutil.rmtree(save_dir)  # an unfinished run: reid would resume it
                print(f"=== {tag}", flush=True)
                run = {"torchreid": run_torchreid,
                       "torchreid_replay": run_torchreid_replay,
                       "torchreid_order": run_torchreid_order}.get(side, run_reid)
                rec.update(run(args, root, save_dir, s))
                if args.cross_eval:
                    rec.update(cross_eval(args, "torchreid" if side == "torchreid" else "reid",
                                          root, save_dir))
                rec["versions"] = info
                with open(path, "a") as f:
                    f.write(json.dumps(rec) + "\n")
                print(f"    mAP {rec['mAP']:.4f}  rank1 {rec['rank1']:.4f}  "
                      f"{rec['seconds']:.0f} s", flush=True)


def welch(a, b):
    """Welch's t-test of mean(a) - mean(b): t, df, p (two-sided), 95 % CI."""
    from scipy import stats
    na, nb = len(a), len(b)
    ma, mb = sum(a) / na, sum(b) / nb
    va = sum((x - ma) ** 2 for x in a) / (na - 1)
    vb = sum((x - mb) ** 2 for x in b) / (nb - 1)
    se2 = va / na + vb / nb
    if se2 == 0:
        return {"diff": ma - mb, "t": math.nan, "df": math.nan, "p": math.nan,
                "ci95": [ma - mb, ma - mb]}
    df = se2 ** 2 / ((va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1))
    t = (ma - mb) / math.sqrt(se2)
    p = 2 * stats.t.sf(abs(t), df)
    h = stats.t.ppf(0.975, df) * math.sqrt(se2)
    # cross-check against scipy's own implementation
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert abs(ref.pvalue - p) < 1e-9, (ref.pvalue, p)
    return {"diff": ma - mb, "t": t, "df": df, "p": p, "ci95": [ma - mb - h, ma - mb + h]}


def mean_std(xs):
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else math.nan
    return m, sd


SETTINGS = ["epochs", "height", "width", "metric", "ids", "cameras", "images_per_camera", "lr",
            "lossless"]


def side_table(rows, side, metric, lines, out):
    """One table: `side` against torchreid per data set and pooled."""
    from scipy import stats
    lines.append(f"## {side} against torchreid: {metric} (percent)")
    lines.append(f"| set | {side} mean ± std (n) | torchreid mean ± std (n) | Δ [95 % CI] "
                 "| Welch t (df), p |")
    lines.append("|---|---|---|---|---|")
    deltas = []
    for d in sorted({r["data_seed"] for r in rows}):
        a = [100 * r[metric] for r in rows if r["data_seed"] == d and r["side"] == side]
        b = [100 * r[metric] for r in rows if r["data_seed"] == d and r["side"] == "torchreid"]
        if len(a) < 2 or len(b) < 2:
            continue
        w = welch(a, b)
        deltas.append(w["diff"])
        out["by_data_seed"].setdefault(side, {}).setdefault(str(d), {})[metric] = {
            side: a, "torchreid": b, **w}
        (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
        lines.append(f"| data seed {d} | {ma:.2f} ± {sa:.2f} ({len(a)}) | {mb:.2f} ± "
                     f"{sb:.2f} ({len(b)}) | {w['diff']:+.2f} [{w['ci95'][0]:+.2f}, "
                     f"{w['ci95'][1]:+.2f}] | {w['t']:.2f} ({w['df']:.1f}), {w['p']:.3g} |")
    a = [100 * r[metric] for r in rows if r["side"] == side]
    b = [100 * r[metric] for r in rows if r["side"] == "torchreid"]
    if len(a) >= 2 and len(b) >= 2:
        w = welch(a, b)
        u = stats.mannwhitneyu(a, b, alternative="two-sided")
        pooled = {side: a, "torchreid": b, **w, "mannwhitney_p": float(u.pvalue)}
        (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
        lines.append(f"| **all** | {ma:.2f} ± {sa:.2f} ({len(a)}) | {mb:.2f} ± {sb:.2f} "
                     f"({len(b)}) | {w['diff']:+.2f} [{w['ci95'][0]:+.2f}, "
                     f"{w['ci95'][1]:+.2f}] | {w['t']:.2f} ({w['df']:.1f}), {w['p']:.3g} |")
        if len(deltas) >= 2:
            # Stratified by set: the per-set differences of means tested against 0 (removes
            # the set-to-set variation that the pooled test counts as noise).
            st = stats.ttest_1samp(deltas, 0.0)
            pooled["stratified"] = {"deltas": deltas, "mean": sum(deltas) / len(deltas),
                                    "t": float(st.statistic), "p": float(st.pvalue)}
            lines.append(f"stratified by set: mean Δ {sum(deltas) / len(deltas):+.2f}, "
                         f"one-sample t over {len(deltas)} sets p = {st.pvalue:.3g}; "
                         f"Mann-Whitney U p = {u.pvalue:.3g}")
        out["pooled"].setdefault(side, {})[metric] = pooled
    lines.append("")


def summarize(args):
    wanted = tuple(getattr(args, k) for k in SETTINGS)
    rows = [r for r in load_results(os.path.join(args.work, "results.jsonl"))
            if tuple(r.get(k, {"images_per_camera": 4, "lossless": False}.get(k))
                     for k in SETTINGS) == wanted]
    if not rows:
        sys.exit("no results for these settings")
    out = {"settings": {k: getattr(args, k) for k in SETTINGS}, "by_data_seed": {},
           "pooled": {}}
    lines = [f"settings: {out['settings']}", ""]
    for side in sorted({r["side"] for r in rows} - {"torchreid"}):
        for metric in ["mAP", "rank1"]:
            side_table(rows, side, metric, lines, out)
    xe = [r for r in rows if "xeval_mAP" in r]
    if xe:
        worst = max(abs(r["xeval_mAP"] - r["mAP"]) for r in xe)
        lines.append(f"cross-evaluation: max |own mAP − other side's evaluation| = "
                     f"{100 * worst:.3f} points over {len(xe)} runs")
        out["cross_eval_max_abs_diff"] = worst
    secs = {}
    for r in rows:
        secs.setdefault(r["side"], []).append(r["seconds"])
    lines.append("mean seconds per run: " + ", ".join(
        f"{s} {sum(v) / len(v):.0f}" for s, v in sorted(secs.items())))
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(args.work, "summary.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(args.work, "summary.json"), "w") as f:
        json.dump(out, f, indent=1)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reid", default="target/release/reid")
    p.add_argument("--work", default="/tmp/reid-compare-seeds")
    p.add_argument("--data-seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--train-seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--sides", nargs="+", default=["reid", "torchreid"])
    p.add_argument("--ids", type=int, default=200)
    p.add_argument("--cameras", type=int, default=6)
    p.add_argument("--images-per-camera", type=int, default=4)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--lr", type=float, default=0.003)
    p.add_argument("--height", type=int, default=128)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--metric", choices=["cosine", "euclidean"], default="cosine")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--workers", type=int, default=2, help="torchreid DataLoader workers")
    p.add_argument("--cross-eval", action="store_true")
    p.add_argument("--lossless", action="store_true",
                   help="store the synthetic images as PNG bytes (named .jpg): identical pixels")
    p.add_argument("--torchreid-init", action="store_true",
                   help="reid sides start from torchreid's initial weights for the same seed "
                        "(name such a side apart, e.g. --sides reid_tinit)")
    p.add_argument("--replay-batches",
                   help="the built examples/training_batches, for the torchreid_replay side")
    p.add_argument("--summarize-only", action="store_true")
    p.add_argument("--quiet", action="store_true")
    # internal: one torchreid run / one torchreid scoring in a child process
    p.add_argument("--_torchreid", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--_torchreid_score", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--_torchreid_init", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--order", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--root", help=argparse.SUPPRESS)
    p.add_argument("--save-dir", help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--weights", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._torchreid:
        return torchreid_one(args)
    if args._torchreid_score:
        return torchreid_score_weights(args)
    if args._torchreid_init:
        return torchreid_init(args)
    if not args.summarize_only:
        run_grid(args)
    summarize(args)


if __name__ == "__main__":
    sys.exit(main())
