#!/usr/bin/env python3
"""Exports a wcmi classifier checkpoint as TorchScript, for `wcmi ... --model FILE.pt`.

The checkpoint (`model.safetensors` and its sidecar JSON) loads into the equivalent PyTorch
module of bench/peer/models.py, which is scripted with its `encode` method (the 64-d
representation) and saved. PyTorch users export their own models the same way:

    class Mine(torch.nn.Module):
        def forward(self, x):          # x: N×C×H×W in [0, 1]; returns logits
            ...
        @torch.jit.export
        def encode(self, x):           # the representation to measure
            ...
    torch.jit.script(Mine().eval()).save("mine.pt")

Checking and export only, never a dependency of wcmi. Set-up and use:

    scripts/setup-bench-peer.sh
    PYTHONPATH=.bench-peer python3 scripts/export_torchscript.py C/model.safetensors C/model.pt
"""
import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench" / "peer"))
from models import load_classifier  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a wcmi classifier checkpoint (model.safetensors)")
    parser.add_argument("out", help="the TorchScript file to write")
    args = parser.parse_args()
    model, dataset = load_classifier(args.checkpoint)
    scripted = torch.jit.script(model)
    scripted.save(args.out)
    print(f"{args.out}: TorchScript of {args.checkpoint} ({dataset}); methods forward, encode")


if __name__ == "__main__":
    main()
