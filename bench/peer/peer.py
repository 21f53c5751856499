"""PyTorch peer for `wcmi bench`: times the same training steps (and the evaluation PGD, on the
network and on its TorchScript trace) written the way the paper's public code writes them (PGD recomputing the full forward pass at each step, model.eval() while
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

from models import BaselineH, Critic, Encoder, MlpHead


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


def dv_estimate(u):
    """DV on scores u[i, j, p], negatives off the diagonal (SPEC section 2)."""
    n = u.shape[0]
    positives = u.diagonal(dim1=0, dim2=1).mean(-1)  # [P]
    mask = ~torch.eye(n, dtype=torch.bool).unsqueeze(-1)
    negatives = u.masked_fill(~mask, float("-inf")).flatten(0, 1)
    log_mean_exp = torch.logsumexp(negatives, 0) - torch.log(torch.tensor(float(n * (n - 1))))
    return (positives - log_mean_exp).mean()


def mi_pgd(encoder, critic, x, eps, steps, alpha):
    """PGD lowering the DV estimate, the full forward recomputed each step; the critic's
    image side detached, as in the paper's code."""
    encoder.eval()
    critic.eval()
    x_adv = x.clone()
    for _ in range(steps):
        x_adv.requires_grad_(True)
        image = critic.image(x_adv).detach()
        rep = critic.representation(encoder(x_adv)[:, :, None, None]).flatten(1)
        loss = -dv_estimate(torch.einsum("ih,jhp->ijp", rep, image))
        (grad,) = torch.autograd.grad(loss, x_adv)
        x_adv = x_adv.detach() + alpha * grad.sign()
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)
    encoder.train()
    critic.train()
    return x_adv.detach()


def encoder_step(encoder, critic, opt, x, worst_case):
    if worst_case:
        x = mi_pgd(encoder, critic, x, 0.3, 10, 0.1)
    loss = -dv_estimate(critic(x, encoder(x)))
    opt.zero_grad()
    loss.backward()
    opt.step()


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
    parser.add_argument("--precision", choices=["f32", "bf16"], default="f32")
    parser.add_argument("--flush-denormal", action="store_true",
                        help="torch.set_flush_denormal(True), as wcmi sets FTZ/DAZ")
    parser.add_argument("--profile", action="store_true",
                        help="also time the steps under torch.profiler and report the share of "
                             "the time in each operator (self time): how much of a step is "
                             "the kernels both sides call, i.e. what no rewrite can remove")
    args = parser.parse_args()
    if args.flush_denormal:
        torch.set_flush_denormal(True)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.rand(args.batch_size, 1, 28, 28)
    y = torch.randint(0, 10, (args.batch_size,))
    if args.kind in ("dim-2048", "dim-512", "worst-case"):
        width = 2048 if args.kind == "dim-2048" else 512
        encoder, critic = Encoder(1, 28), Critic(1, width)
        opt = torch.optim.Adam(list(encoder.parameters()) + list(critic.parameters()), lr=1e-4)
        worst_case = args.kind == "worst-case"
        step = lambda: encoder_step(encoder, critic, opt, x, worst_case)
    elif args.kind in ("pgd", "pgd-script"):
        model = BaselineH(1, 28).eval()
        if args.kind == "pgd-script":
            for p in model.parameters():
                p.requires_grad_(False)
            model = torch.jit.trace(model, x)
        step = lambda: pgd(model, x, y, 0.3, 10, 0.1)
    else:
        model = BaselineH(1, 28)
        if args.kind == "head-adv":
            for p in model.encoder.parameters():
                p.requires_grad_(False)
            opt = torch.optim.Adam(model.head.parameters(), lr=1e-4)
        else:
            opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        adversarial = args.kind != "supervised"
        step = lambda: supervised_step(model, opt, x, y, adversarial)
    if args.precision == "bf16":
        f32_step = step

        def step():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                f32_step()

    for _ in range(args.warmup):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    elapsed = time.perf_counter() - start
    report = {
        "kind": args.kind,
        "ms_per_step": 1000 * elapsed / args.steps,
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    if args.profile:
        report["self_time_share"] = operator_shares(step, args.steps)
    print(json.dumps(report))


def operator_shares(step, steps, top=12):
    """Share of the profiled steps' self CPU time per operator, largest first."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    shares = sorted(((e.key, e.self_cpu_time_total / total) for e in events),
                    key=lambda kv: -kv[1])
    return {name: round(share, 4) for name, share in shares[:top]}


if __name__ == "__main__":
    main()
