#!/usr/bin/env python3
"""Mean ± std over seeds of the headline cells that scripts/readme-figures.sh measured.

Reads DIR/<dataset>-seed*/<cell>/eval-<dataset>.json (dataset mnist by default, or
fashion-mnist: natural and the paper's PGD on the test set, as train-head writes it),
strong.json and autoattack.json (`evaluate --attack strong` and `--attack autoattack`, on the
first 1,000 test images unless the script asked for fewer, with the masking flags AutoAttack's
suite raised), and the encoders' last log lines; prints a Markdown table, one value per seed in
brackets, the paper's figure (SPEC §6) in square brackets.
"""
import json
import statistics
import sys
from pathlib import Path

CELLS = [
    ("worst-case-mlp-standard", "worst-case MI", "MLP, standard"),
    ("worst-case-mlp-standard-es", "worst-case MI", "MLP, standard, E.S."),
    ("worst-case-mlp-adversarial", "worst-case MI", "MLP, robust"),
    ("worst-case-linear-standard", "worst-case MI", "linear, standard"),
    ("worst-case-linear-adversarial", "worst-case MI", "linear, robust"),
    ("dim-mlp-adversarial", "standard MI (DIM)", "MLP, robust"),
]

# The paper's natural / PGD figures per dataset and cell (SPEC §6).
PAPER = {
    "mnist": {
        "worst-case-mlp-standard": (96.67, 9.97),
        "worst-case-mlp-standard-es": (94.68, 12.79),
        "worst-case-mlp-adversarial": (95.05, 60.64),
        "worst-case-linear-standard": (82.10, 3.69),
        "worst-case-linear-adversarial": (73.99, 30.55),
        "dim-mlp-adversarial": (44.99, 16.70),
    },
    "fashion-mnist": {
        "worst-case-mlp-standard": (90.45, 5.38),
        "worst-case-mlp-standard-es": (81.66, 29.71),
        "worst-case-mlp-adversarial": (84.31, 70.44),
        "worst-case-linear-standard": (87.37, 18.20),
        "worst-case-linear-adversarial": (81.05, 61.33),
        "dim-mlp-adversarial": (48.61, 14.95),
    },
}


def mean_std(values):
    if not values:
        return "–"
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    seeds = ", ".join(f"{v:.2f}" for v in values)
    return f"{mean:.2f} ± {std:.2f} ({seeds})"


def main(root: Path, dataset: str) -> None:
    prefix = f"{dataset}-seed"
    seeds = sorted(root.glob(f"{prefix}*"), key=lambda p: int(p.name.removeprefix(prefix)))
    print(f"{dataset} seeds: {', '.join(p.name.removeprefix(prefix) for p in seeds)}\n")
    examples = sorted(
        {json.loads(p.read_text())["examples"] for p in root.glob(f"{prefix}*/*/strong.json")}
    )
    first = ", ".join(f"{n:,}" for n in examples) or "–"
    print(
        f"| encoder | head | natural % [paper] | PGD-10 % [paper] | strong % (first {first}) "
        "| AutoAttack % (first 1,000) | masking flags |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, encoder, head in CELLS:
        if not any((seed / name).is_dir() for seed in seeds):
            continue
        paper_nat, paper_adv = PAPER[dataset][name]
        natural, pgd, strong, autoattack, flags = [], [], [], [], []
        for seed in seeds:
            cell = seed / name
            evaluation = cell / f"eval-{dataset}.json"
            if evaluation.is_file():
                result = json.loads(evaluation.read_text())
                natural.append(100 * result["natural_accuracy"])
                pgd.append(100 * result["worst_case_accuracy"])
            if (cell / "strong.json").is_file():
                strong.append(100 * json.loads((cell / "strong.json").read_text())["worst_case_accuracy"])
            if (cell / "autoattack.json").is_file():
                result = json.loads((cell / "autoattack.json").read_text())
                autoattack.append(100 * result["worst_case_accuracy"])
                flags.append(len(result["masking"]["flags"]))
        print(
            f"| {encoder} | {head} | {mean_std(natural)} [{paper_nat}] "
            f"| {mean_std(pgd)} [{paper_adv}] | {mean_std(strong)} | {mean_std(autoattack)} "
            f"| {'none' if flags and not any(flags) else ', '.join(map(str, flags)) or '–'} |"
        )
    print("\n| encoder | last epoch: training Î, validation Î, worst-case Î (nats), per seed |")
    print("|---|---|")
    for objective in ("worst-case", "dim"):
        rows = []
        for seed in seeds:
            log = seed / f"encoder-{objective}" / "log.jsonl"
            if log.is_file() and log.read_text().strip():
                last = json.loads(log.read_text().strip().splitlines()[-1])
                rows.append(
                    f"{last['train_mi']:.2f} / {last['val_mi']:.2f} / {last['val_worst_case_mi']:.2f}"
                    f" (epoch {last['epoch']})"
                )
        print(f"| {objective} | {'; '.join(rows) or '–'} |")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3) or (len(sys.argv) == 3 and sys.argv[2] not in PAPER):
        sys.exit(f"usage: summarise_headline.py DIR [{' | '.join(PAPER)}] (default mnist)")
    main(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) == 3 else "mnist")
