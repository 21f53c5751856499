#!/usr/bin/env bash
# Installs the PyTorch peer of `wcmi bench` (torch==2.13.0, the same libtorch as wcmi, with the
# libraries Python's `import torch` needs) into .bench-peer/. Benchmarking only.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f .bench-peer/torch/__init__.py ]; then exit 0; fi
python3 -m pip install --quiet --disable-pip-version-check --target .bench-peer torch==2.13.0 numpy
