#!/usr/bin/env bash
# Installs the PyTorch peer of `wcmi bench` (torch==2.13.0, the same libtorch as wcmi, with the
# libraries Python's `import torch` needs) into .bench-peer/, and the reference AutoAttack
# (pyautoattack, a packaging of fra31/auto-attack) for bench/autoattack_check.py. Benchmarking
# and cross-checking only: wcmi never imports them.
set -euo pipefail
cd "$(dirname "$0")/.."
pip_install=(python3 -m pip install --quiet --disable-pip-version-check --target .bench-peer)
if [ ! -f .bench-peer/torch/__init__.py ]; then
  "${pip_install[@]}" torch==2.13.0 numpy
fi
if [ ! -f .bench-peer/pyautoattack/__init__.py ]; then
  "${pip_install[@]}" --no-deps pyautoattack==0.2.0
fi
