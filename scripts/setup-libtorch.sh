#!/usr/bin/env bash
# Installs libtorch 2.13.0 (the version tch 0.26 needs) from the torch wheel on PyPI into
# .libtorch/py, where .cargo/config.toml points LIBTORCH. Idempotent.
#
#   scripts/setup-libtorch.sh          light CPU install (~1.3 GB, no CUDA math libraries)
#   scripts/setup-libtorch.sh cuda     full install with the CUDA libraries (for --device cuda)
#
# WCMI_TORCH=cpu|cuda selects the flavour when no argument is given.
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${1:-${WCMI_TORCH:-cpu}}
target=.libtorch/py
marker=.libtorch/flavour

case "$flavour" in
  cpu | cuda) ;;
  *) echo "setup-libtorch: unknown flavour '$flavour' (expected cpu or cuda)" >&2; exit 2 ;;
esac

if [ -f "$marker" ] && [ -f "$target/torch/lib/libtorch_cpu.so" ]; then
  installed=$(cat "$marker")
  if [ "$installed" = "$flavour" ] || [ "$installed" = cuda ]; then
    exit 0
  fi
fi

python=$(command -v python3 || command -v python) || {
  echo "setup-libtorch: python3 with pip is needed to fetch the torch wheel" >&2; exit 1; }
rm -rf "$target" "$marker"
mkdir -p .libtorch
pip_install=("$python" -m pip install --quiet --disable-pip-version-check --target "$target")
echo "setup-libtorch: installing torch==2.13.0 ($flavour) into $target" >&2
if [ "$flavour" = cpu ]; then
  "${pip_install[@]}" --no-deps torch==2.13.0 nvidia-cuda-runtime==13.0.96 nvidia-cuda-cupti==13.0.85
else
  "${pip_install[@]}" torch==2.13.0
fi
echo "$flavour" > "$marker"
