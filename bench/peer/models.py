"""PyTorch modules equivalent to wcmi's networks (SPEC §3), with the same state_dict names.

A wcmi classifier checkpoint loads into them directly, with the settings of its sidecar JSON:

    from models import load_classifier
    model, dataset = load_classifier("runs/supervised-mnist-seed0/model.safetensors")

BatchNorm's `num_batches_tracked` buffers are not stored; PyTorch fills them in on load.
Classifiers export `encode`, their 64-d representation, for `torch.jit.script` and
`wcmi evaluate|vulnerability --model` (scripts/export_torchscript.py).
"""
import json
import struct
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64}


class ConvBlock(nn.Module):
    """k4s2p1: Conv2d(kernel 4, stride 2, padding 1, no bias) -> BatchNorm2d -> ReLU."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 4, 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


class Encoder(nn.Module):
    def __init__(self, in_channels=1, image_size=28):
        super().__init__()
        self.conv1 = ConvBlock(in_channels, 64)
        self.conv2 = ConvBlock(64, 128)
        self.conv3 = ConvBlock(128, 256)
        side = image_size
        for _ in range(3):
            side = (side + 2 - 4) // 2 + 1
        self.fc1 = nn.Linear(256 * side * side, 1024)
        self.fc1_bn = nn.BatchNorm1d(1024)
        self.fc2 = nn.Linear(1024, 64)

    def forward(self, x):
        h = self.conv3(self.conv2(self.conv1(x))).flatten(1)
        return self.fc2(torch.relu(self.fc1_bn(self.fc1(h))))


class ResidualBlock1x1(nn.Module):
    def __init__(self, cin, width):
        super().__init__()
        self.nonlinear1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        self.nonlinear2 = nn.Conv2d(width, width, 1)
        self.shortcut = nn.Conv2d(cin, width, 1, bias=False)
        self.layer_norm = nn.LayerNorm(width)
        if width >= cin:
            with torch.no_grad():
                self.shortcut.weight.uniform_(-0.01, 0.01)
                eye = torch.eye(width, cin, dtype=torch.bool).view(width, cin, 1, 1)
                self.shortcut.weight.masked_fill_(eye, 1.0)

    def forward(self, x):
        h = self.nonlinear2(torch.relu(self.bn(self.nonlinear1(x)))) + self.shortcut(x)
        return self.layer_norm(h.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ImageSide(nn.Module):
    def __init__(self, in_channels, width):
        super().__init__()
        self.conv1 = ConvBlock(in_channels, 64)
        self.conv2 = ConvBlock(64, 128)
        self.block = ResidualBlock1x1(128, width)

    def forward(self, x):
        return self.block(self.conv2(self.conv1(x))).flatten(2)


class Critic(nn.Module):
    """Scores u[i, j, p] = <rep(z_i), image(x_j)[:, p]>."""

    def __init__(self, in_channels=1, width=2048):
        super().__init__()
        self.image = ImageSide(in_channels, width)
        self.representation = ResidualBlock1x1(64, width)

    def forward(self, x, z):
        image = self.image(x)  # [N, H, P]
        rep = self.representation(z[:, :, None, None]).flatten(1)  # [N, H]
        return torch.einsum("ih,jhp->ijp", rep, image)


class LinearHead(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.fc = nn.Linear(64, classes)

    def forward(self, z):
        return self.fc(z)


class MlpHead(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.fc1 = nn.Linear(64, 200)
        self.dropout = nn.Dropout(0.1)
        self.bn = nn.BatchNorm1d(200)
        self.fc2 = nn.Linear(200, classes)

    def forward(self, z):
        return self.fc2(torch.relu(self.bn(self.dropout(self.fc1(z)))))


class BaselineH(nn.Module):
    """Encoder then head (MLP or linear), with wcmi's state_dict names (encoder.*, head.*):
    the supervised Baseline-H, and a head on a frozen encoder alike."""

    def __init__(self, in_channels=1, image_size=28, classes=10, head="mlp"):
        super().__init__()
        self.encoder = Encoder(in_channels, image_size)
        self.head = {"mlp": MlpHead, "linear": LinearHead}[head](classes)

    def forward(self, x):
        return self.head(self.encoder(x))

    @torch.jit.export
    def encode(self, x):
        """The 64-d representation (wcmi's `encoder` layer)."""
        return self.encoder(x)


def load_safetensors(path):
    """A safetensors file as a dict of tensors (the format: u64 header length, JSON, bytes)."""
    raw = Path(path).read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])
    body = raw[8 + length :]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        array = np.frombuffer(body[start:end], dtype=DTYPES[info["dtype"]])
        tensors[name] = torch.from_numpy(array.reshape(info["shape"]).copy())
    return tensors


def load_classifier(checkpoint):
    """A wcmi classifier checkpoint as a BaselineH in evaluation mode, and its dataset."""
    sidecar = json.loads(Path(checkpoint).with_suffix(".json").read_text())
    spec = sidecar["model"]
    if spec["kind"] not in ("baseline-h", "encoder-head"):
        sys.exit(f"{checkpoint}: a {spec['kind']} is not a classifier")
    channels, side, _ = spec["image_shape"]
    model = BaselineH(channels, side, spec["num_classes"], spec.get("head", "mlp"))
    missing, unexpected = model.load_state_dict(load_safetensors(checkpoint), strict=False)
    missing = [m for m in missing if not m.endswith("num_batches_tracked")]
    if missing or unexpected:
        sys.exit(f"{checkpoint}: missing {missing}, unexpected {unexpected}")
    return model.eval(), sidecar.get("dataset")
