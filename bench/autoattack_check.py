#!/usr/bin/env python3
"""Cross-checks `wcmi evaluate --attack autoattack` with an independent implementation.

The same weights (a wcmi classifier checkpoint, loaded into the PyTorch modules of
peer/models.py) and the same first N test images are attacked by the reference AutoAttack
(Croce & Hein 2020; the `pyautoattack` package, a packaging of fra31/auto-attack) at its
standard settings: APGD-CE and APGD-T (9 targets) with 100 iterations, FAB-T (9 targets), Square
with 5,000 queries. The reference's attacks run as a cascade in wcmi's order (APGD-CE, APGD-T,
Square) and then FAB-T, which wcmi does not implement: the first three compare attack by
attack, and FAB-T's row measures what leaving it out costs.

Checking only: this is not a dependency of wcmi. Set-up and use:

    scripts/setup-bench-peer.sh          # torch, numpy and pyautoattack into .bench-peer/
    wcmi evaluate --checkpoint C --attack autoattack --limit 1000 --out wcmi.json
    PYTHONPATH=.bench-peer python3 bench/autoattack_check.py --checkpoint C \\
        --wcmi wcmi.json --limit 1000 --out check.json
"""
import argparse
import gzip
import json
import struct
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent / "peer"))
from models import load_classifier  # noqa: E402

# The dataset's ℓ∞ budget (SPEC §5), as wcmi's evaluate defaults to.
EPS = {"mnist": 0.3, "fashion-mnist": 0.1}


def read_idx(path):
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    dims = raw[3]
    shape = struct.unpack(f">{dims}I", raw[4 : 4 + 4 * dims])
    return np.frombuffer(raw[4 + 4 * dims :], dtype=np.uint8).reshape(shape)


def test_images(data_dir, dataset, limit):
    folder = Path(data_dir) / dataset

    def find(stem):
        for name in (stem + ".gz", stem):
            if (folder / name).is_file():
                return folder / name
        sys.exit(f"{folder}: no {stem}[.gz]")

    images = read_idx(find("t10k-images-idx3-ubyte"))[:limit]
    labels = read_idx(find("t10k-labels-idx1-ubyte"))[:limit]
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    return x, torch.from_numpy(labels.astype(np.int64))


def reference_cascade(model, x, y, eps, order, batch_size, seed):
    """The reference's attacks at its standard settings, each on what survived those before."""
    from pyautoattack import AutoAttack

    adversary = AutoAttack(model, eps=eps, norm="Linf", version="standard", seed=seed)
    adversary.fab.targeted = True
    adversary.fab.n_restarts = 1
    attacks = {
        "apgd-ce": adversary.apgd,
        "apgd-t": adversary.apgd_targeted,
        "square": adversary.square,
        "fab-t": adversary.fab,
    }
    adversary.apgd.loss = "ce"
    with torch.no_grad():
        robust = model(x).argmax(1).eq(y)
    rows = [("natural", robust.float().mean().item(), 0.0)]
    for name in order:
        started = time.time()
        alive = robust.nonzero().flatten()
        for start in range(0, len(alive), batch_size):
            index = alive[start : start + batch_size]
            adv = attacks[name].perturb(x[index], y[index])
            with torch.no_grad():
                fooled = model(adv).argmax(1).ne(y[index])
            robust[index[fooled]] = False
        rows.append((name, robust.float().mean().item(), time.time() - started))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a wcmi classifier's model.safetensors")
    parser.add_argument("--wcmi", help="wcmi's `evaluate --attack autoattack` JSON to compare with")
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--dataset", help="default: the checkpoint's")
    parser.add_argument("--limit", type=int, default=1000, help="first N test images")
    parser.add_argument("--eps", type=float, help="default: the dataset's (SPEC §5)")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", help="JSON of both sides' rows")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, dataset = load_classifier(args.checkpoint)
    dataset = args.dataset or dataset
    if dataset not in EPS:
        sys.exit(f"--dataset: {dataset!r} is not one this check reads (mnist, fashion-mnist)")
    eps = args.eps if args.eps is not None else EPS[dataset]
    x, y = test_images(args.data_dir, dataset, args.limit)
    order = ["apgd-ce", "apgd-t", "square", "fab-t"]
    reference = reference_cascade(model, x, y, eps, order, args.batch_size, args.seed)
    ours = {}
    if args.wcmi:
        result = json.loads(Path(args.wcmi).read_text())
        if result["examples"] != len(y):
            sys.exit(f"--wcmi: {args.wcmi} evaluated {result['examples']} images, not --limit {len(y)}")
        ours["natural"] = result["natural_accuracy"]
        for attack in result["attacks"]:
            ours[attack["settings"]["method"]] = attack["accuracy"]
    print(f"{args.checkpoint}: {dataset}, first {len(y)} test images, Linf eps = {eps}")
    print("| attack (cascade, after this and those above) | reference % | wcmi % | difference | reference s |")
    print("|---|---|---|---|---|")
    for name, accuracy, seconds in reference:
        mine = ours.get(name)
        mine_text = "–" if mine is None else f"{100 * mine:.2f}"
        diff = "–" if mine is None else f"{100 * (mine - accuracy):+.2f}"
        print(f"| {name} | {100 * accuracy:.2f} | {mine_text} | {diff} | {seconds:.0f} |")
    if args.out:
        rows = [
            {"attack": n, "reference_accuracy": a, "wcmi_accuracy": ours.get(n), "reference_seconds": s}
            for n, a, s in reference
        ]
        Path(args.out).write_text(json.dumps({"checkpoint": args.checkpoint, "eps": eps,
                                              "examples": len(y), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
