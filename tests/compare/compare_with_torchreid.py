#!/usr/bin/env python3
"""Trains osnet_x0_25 with the same recipe on the same synthetic images in reid (Burn) and in
torchreid 0.2.5 (PyTorch), and prints mAP / Rank-1 of both. Run by hand, never in CI: it
needs PyPI torch + torchreid==0.2.5 (see README) and a built `reid` binary.

    python tests/compare/compare_with_torchreid.py --reid target/release/reid \
        --work /tmp/compare --ids 200 --epochs 30

Recipe (both sides): from scratch, 128x64 input, random flip + random crop, batch 32,
label-smoothed cross-entropy, AMSGrad at 0.003 with weight decay 5e-4, cosine schedule,
Euclidean distance, evaluation after the last epoch. The dataset is `reid synth` output in
the Market-1501 layout, which torchreid reads as `market1501`.

With `--finetune`, both sides instead start from the same model: reid first trains one from
scratch on another synthetic set (`--source-ids`, seed 5, `--pretrain-epochs`), `reid convert`
writes it with torchreid's names, and both finetune it on the target set at lr 0.0015 (the
classifier replaced for the new identities).

    python tests/compare/compare_with_torchreid.py --finetune --epochs 10 --work /tmp/ft
"""
import argparse
import json
import os
import random
import subprocess
import sys
import time


def run_reid(args, root, save_dir, weights=None, lr=0.003, epochs=None):
    epochs = epochs or args.epochs
    config = [
        f"data.root={root}", "data.height=128", "data.width=64",
        "data.transforms=[random_flip, random_crop]", f"data.save_dir={save_dir}",
        "train.optim=amsgrad", f"train.lr={lr}", "train.weight_decay=0.0005",
        f"train.max_epoch={epochs}", "train.batch_size=32", "train.lr_scheduler=cosine",
        f"train.seed={args.seed}", "test.dist_metric=euclidean", "test.eval_freq=-1",
        "test.export_onnx=false", "loss.name=softmax", "loss.softmax.label_smooth=true",
    ] + ([f"model.load_weights={weights}"] if weights else [])
    started = time.time()
    subprocess.run([args.reid, "train", *config], check=True)
    seconds = time.time() - started
    with open(os.path.join(save_dir, "metrics.jsonl")) as f:
        last = [json.loads(line) for line in f][-1]
    return {"mAP": last["eval"][0]["mAP"], "rank1": last["eval"][0]["rank1"], "seconds": seconds}


def run_torchreid(args, root, save_dir, weights=None, lr=0.003):
    import numpy as np
    import torch
    import torchreid

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(os.cpu_count())
    data = torchreid.data.ImageDataManager(
        root=root, sources="market1501", targets="market1501", height=128, width=64,
        transforms=["random_flip", "random_crop"], batch_size_train=32, batch_size_test=100,
        workers=2, use_gpu=False,
    )
    model = torchreid.models.build_model(
        "osnet_x0_25", num_classes=data.num_train_pids, loss="softmax", pretrained=False)
    if weights:
        # torchreid's load_pretrained_weights rule: take every tensor whose name and size match.
        from safetensors.torch import load_file
        state = model.state_dict()
        state.update({k: v for k, v in load_file(weights).items()
                      if k in state and state[k].size() == v.size()})
        model.load_state_dict(state)
    optimizer = torchreid.optim.build_optimizer(model, optim="amsgrad", lr=lr, weight_decay=5e-4)
    scheduler = torchreid.optim.build_lr_scheduler(
        optimizer, lr_scheduler="cosine", max_epoch=args.epochs)
    engine = torchreid.engine.ImageSoftmaxEngine(
        data, model, optimizer=optimizer, scheduler=scheduler, use_gpu=False, label_smooth=True)
    started = time.time()
    engine.run(save_dir=save_dir, max_epoch=args.epochs, eval_freq=-1, print_freq=1000,
               dist_metric="euclidean")
    seconds = time.time() - started
    engine.set_model_mode("eval")
    loaders = engine.test_loader["market1501"]
    rank1, mAP = engine._evaluate(
        dataset_name="market1501", query_loader=loaders["query"],
        gallery_loader=loaders["gallery"], dist_metric="euclidean", normalize_feature=False,
        visrank=False, visrank_topk=10, save_dir=save_dir, use_metric_cuhk03=False,
        ranks=[1, 5, 10, 20], rerank=False)
    return {"mAP": float(mAP), "rank1": float(rank1), "seconds": seconds}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reid", default="target/release/reid")
    p.add_argument("--work", default="/tmp/reid-compare")
    p.add_argument("--ids", type=int, default=200)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--skip-reid", action="store_true")
    p.add_argument("--skip-torchreid", action="store_true")
    p.add_argument("--finetune", action="store_true")
    p.add_argument("--source-ids", type=int, default=200)
    p.add_argument("--pretrain-epochs", type=int, default=15)
    args = p.parse_args()
    root = os.path.join(args.work, "data")
    if not os.path.isdir(os.path.join(root, "market1501")):
        subprocess.run([args.reid, "synth", os.path.join(root, "market1501"), "--ids",
                        str(args.ids), "--seed", "0"], check=True)
    results = {}
    weights, lr = None, 0.003
    if args.finetune:
        source = os.path.join(args.work, "source")
        if not os.path.isdir(os.path.join(source, "market1501")):
            subprocess.run([args.reid, "synth", os.path.join(source, "market1501"), "--ids",
                            str(args.source_ids), "--seed", "5"], check=True)
        weights, lr = os.path.join(args.work, "source.safetensors"), 0.0015
        if not os.path.isfile(weights):
            pretrained = os.path.join(args.work, "pretrain")
            results["source"] = run_reid(args, source, pretrained, epochs=args.pretrain_epochs)
            subprocess.run([args.reid, "convert", "--arch", "osnet_x0_25", "--weights",
                            os.path.join(pretrained, "best.bpk"), "-o", weights], check=True)
    if not args.skip_reid:
        results["reid"] = run_reid(args, root, os.path.join(args.work, "reid"), weights, lr)
    if not args.skip_torchreid:
        results["torchreid"] = run_torchreid(
            args, root, os.path.join(args.work, "torchreid"), weights, lr)
    with open(os.path.join(args.work, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    for name, r in results.items():
        print(f"{name:10s} mAP {r['mAP'] * 100:5.1f}%  Rank-1 {r['rank1'] * 100:5.1f}%  "
              f"({r['seconds']:.0f} s)")


if __name__ == "__main__":
    sys.exit(main())
