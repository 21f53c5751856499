"""PyTorch peer for `wcmi bench`: times the same training steps written the way the paper's
public code writes them (PGD recomputing the full forward pass at each step, model.eval() while
attacking, torch.autograd.grad for the input gradient).

    python peer.py --kind supervised-adv --steps 20 --warmup 3 --threads 2

prints one JSON line: {"kind": ..., "ms_per_step": ..., "peak_rss_kb": ...}.
PyTorch is a benchmarking peer only, never a dependency of wcmi.
"""
import argparse
import json
import resource
import time

import torch
import torch.nn.functional as F

from models import BaselineH


def pgd(model, x, y, eps, steps, alpha):
    """The paper's evaluation/training PGD: l-inf, no random start."""
    x_adv = x.clone()
    for _ in range(steps):
        x_adv.requires_grad_(True)
        loss = F.cross_entropy(model(x_adv), y)
        (grad,) = torch.autograd.grad(loss, x_adv)
        x_adv = x_adv.detach() + alpha * grad.sign()
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)
    return x_adv.detach()


def supervised_step(model, opt, x, y, adversarial):
    if adversarial:
        model.eval()
        x = pgd(model, x, y, 0.3, 10, 0.1)
        model.train()
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", required=True)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.rand(args.batch_size, 1, 28, 28)
    y = torch.randint(0, 10, (args.batch_size,))
    model = BaselineH(1, 28)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    kinds = {
        "supervised": lambda: supervised_step(model, opt, x, y, False),
        "supervised-adv": lambda: supervised_step(model, opt, x, y, True),
    }
    step = kinds[args.kind]
    for _ in range(args.warmup):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    elapsed = time.perf_counter() - start
    print(json.dumps({
        "kind": args.kind,
        "ms_per_step": 1000 * elapsed / args.steps,
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }))


if __name__ == "__main__":
    main()
