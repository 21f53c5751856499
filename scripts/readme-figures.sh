#!/usr/bin/env bash
# Reruns the measurements behind the README's figures with the README's own commands.
#
#   scripts/readme-figures.sh headline [SEED ...]  MNIST headline cells at the cpu preset
#                                                  (default seeds 0 1 2), then their summary;
#                                                  WCMI_ENCODER_FLAGS adds flags to the
#                                                  worst-case encoder's train-encoder
#   scripts/readme-figures.sh fast                 the same cells at the quick preset, seed 0:
#                                                  a check of the script in minutes, not a result
#   scripts/readme-figures.sh fashion [SEED ...]   Fashion-MNIST at the cpu preset: the worst-case
#                                                  encoder, its standard and robust MLP heads
#                                                  (PGD, strong suite, AutoAttack), per seed
#                                                  (default 0)
#   scripts/readme-figures.sh bench                the speed table (1 and 2 threads)
#   scripts/readme-figures.sh summary DIR [DATASET]
#                                                  mean ± std of a headline folder's seeds
#                                                  (mnist-seed*, or DATASET-seed*)
#   scripts/readme-figures.sh random-start PRESET [SEED ...]
#                                                  the worst-case encoder's coarse PGD (5 steps
#                                                  of 0.15, the cpu preset's before issue 13)
#                                                  from the image (the paper's) against a
#                                                  random start: encoder,
#                                                  robust MLP head, strong suite and PGD-100
#                                                  (first 500 at the demo preset, else 1,000)
#                                                  per seed
#                                                  (default seeds 0 1 2), then both summaries
#   scripts/readme-figures.sh lever NAME 'FLAGS' [SEED ...]
#                                                  a lever on the worst-case objective's
#                                                  stability (issue 13): the random-start
#                                                  worst-case encoder at the cpu preset with
#                                                  FLAGS (e.g. '--lr 3e-4'), the check of its
#                                                  draw (below), then its robust MLP head (PGD
#                                                  and strong suite), per seed (default 1)
#   scripts/readme-figures.sh check-draw DIR SEED  the check of an encoder's draw in DIR
#                                                  (holding encoder-worst-case/): a standard
#                                                  MLP head under PGD-10 and the strong suite,
#                                                  and the encoder's RV under a fresh
#                                                  global-cosine critic
#   scripts/readme-figures.sh compare              `wcmi compare` on MNIST: Baseline-H standard
#                                                  and adversarial (also as TorchScript), DIM's
#                                                  robust MLP head (cpu preset, seed 0) and the
#                                                  random-start worst-case heads of seeds 1 and 2
#                                                  (trained by `random-start cpu 1 2` if absent)
#
# Headline cells per seed (folder names as in `wcmi reproduce`): the worst-case and DIM
# encoders; on the worst-case encoder MLP and linear heads trained standardly (last epoch),
# standardly with early stopping (E.S., MLP) and adversarially (E.S.); on DIM the adversarial
# MLP head. Each head is evaluated on all 10,000 test images under the paper's PGD (by
# train-head) and under the strong suite on the first 1,000 (`evaluate --attack strong`, a
# cascade: accuracy after each attack and those before it); once every cell of a seed is
# trained, each head also under AutoAttack's standard suite on the same 1,000
# (`evaluate --attack autoattack`, with its gradient-masking flags).
# Every step resumes or is skipped when its result exists, so rerunning completes a folder.
#
# Environment: WCMI_FIGURES (output root, default runs/readme), WCMI_ENCODER_FLAGS (headline only;
# e.g. '--random-start false --steps 5 --step-size 0.15', the cpu preset's encoder PGD before
# issue 13's change, for the README's earlier headline table), WCMI_JOBS (processes at once,
# default 2: seeds side by side, and a seed's cells in two lanes when there are fewer seeds than
# jobs), WCMI_THREADS (libtorch threads per process, default 1: split the cores).
set -euo pipefail
cd "$(dirname "$0")/.."
root=${WCMI_FIGURES:-runs/readme}
jobs=${WCMI_JOBS:-2}
threads=${WCMI_THREADS:-1}
encoder_flags=${WCMI_ENCODER_FLAGS:-}
# The dataset of encoders and heads (the `fashion` command sets fashion-mnist).
dataset=mnist
# The cpu preset's worst-case PGD before issue 13 (5 steps of 0.15): the random-start experiments.
coarse_pgd='--steps 5 --step-size 0.15'

# Builds, then runs a copy of the binary named by its commit, so that a rebuild during a long
# run cannot change the code half-way; the copy's name records which code measured what.
build() {
  scripts/setup-libtorch.sh
  cargo build --release --quiet
  local commit
  commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo -dirty)
  mkdir -p "$root/bin"
  wcmi=$root/bin/wcmi-$commit
  # Through a rename: a copy in use by a running seed is replaced, not written into.
  cp target/release/wcmi "$wcmi.tmp.$$" && mv -f "$wcmi.tmp.$$" "$wcmi"
}

# head DIR NAME ENCODER HEAD TRAINING [FLAGS]: one head, its PGD and strong evaluation
# (on the first $strong_limit test images).
head() {
  local dir=$1 name=$2 encoder=$3 kind=$4 training=$5
  shift 5
  local out=$dir/$name
  if [ ! -f "$out/eval-$dataset.json" ]; then
    "$wcmi" train-head --encoder "$encoder" --head "$kind" --training "$training" "$@" \
      --preset "$preset" --seed "$seed" --threads "$threads" --out "$out" --resume
  fi
  if [ ! -f "$out/strong.json" ]; then
    "$wcmi" evaluate --checkpoint "$out/model.safetensors" --attack strong \
      --limit "${strong_limit:-1000}" --threads "$threads" --out "$out/strong.json"
  fi
}

# autoattack DIR NAME: AutoAttack's standard suite on a trained head.
autoattack() {
  local out=$1/$2
  if [ ! -f "$out/autoattack.json" ]; then
    "$wcmi" evaluate --checkpoint "$out/model.safetensors" --attack autoattack --limit 1000 \
      --threads "$threads" --out "$out/autoattack.json"
  fi
}

# pgd100 DIR NAME: the paper's PGD from the image with 100 steps of 0.01 on a trained head.
pgd100() {
  local out=$1/$2
  if [ ! -f "$out/pgd100.json" ]; then
    "$wcmi" evaluate --checkpoint "$out/model.safetensors" --attack pgd --steps 100 \
      --step-size 0.01 --limit "${strong_limit:-1000}" --threads "$threads" --out "$out/pgd100.json"
  fi
}

# encoder DIR OBJECTIVE [FLAG ...]: one encoder (resumed, or nothing to do when finished).
encoder() {
  local dir=$1 objective=$2
  shift 2
  "$wcmi" train-encoder --dataset "$dataset" --objective "$objective" --preset "$preset" "$@" \
    --seed "$seed" --threads "$threads" --out "$dir/encoder-$objective" --resume
}

# lanes CMD ...: each CMD (a shell snippet) in turn, or all at once when $lanes > 1; fails if any does.
lanes() {
  if [ "$lanes" -le 1 ]; then
    local cmd
    for cmd in "$@"; do eval "$cmd"; done
    return
  fi
  local pids=() pid status=0
  for cmd in "$@"; do
    (eval "$cmd") &
    pids+=("$!")
  done
  for pid in "${pids[@]}"; do wait "$pid" || status=1; done
  return $status
}

# headline_seed SEED: every headline cell of one seed, under $root/$preset/mnist-seed$SEED, in
# three phases whose two lanes take about equal time (run side by side when $lanes is 2).
headline_seed() {
  seed=$1
  local dir=$root/$preset/mnist-seed$seed
  local wc=$dir/encoder-worst-case/model.safetensors dim=$dir/encoder-dim/model.safetensors
  lanes "encoder $dir worst-case $encoder_flags" \
    "encoder $dir dim; head $dir dim-mlp-adversarial $dim mlp adversarial"
  lanes "head $dir worst-case-mlp-standard $wc mlp standard
         head $dir worst-case-mlp-adversarial $wc mlp adversarial" \
    "head $dir worst-case-mlp-standard-es $wc mlp standard-es
     head $dir worst-case-linear-standard $wc linear standard
     head $dir worst-case-linear-adversarial $wc linear adversarial"
  lanes "for cell in worst-case-mlp-standard worst-case-mlp-adversarial worst-case-mlp-standard-es; do
           autoattack $dir \$cell; done" \
    "for cell in dim-mlp-adversarial worst-case-linear-standard worst-case-linear-adversarial; do
       autoattack $dir \$cell; done"
}

headline() {
  local seeds=("$@")
  [ ${#seeds[@]} -gt 0 ] || seeds=(0 1 2)
  # Cores left over when there are fewer seeds than jobs run a seed's cells side by side.
  lanes=$((jobs / ${#seeds[@]}))
  [ "$lanes" -ge 1 ] || lanes=1
  [ "$lanes" -le 2 ] || lanes=2
  build
  export -f headline_seed head encoder autoattack lanes
  export root preset threads wcmi lanes encoder_flags dataset
  printf '%s\n' "${seeds[@]}" |
    xargs -P "$jobs" -I{} bash -c 'set -euo pipefail; headline_seed {} > "$root/$preset/seed{}.log" 2>&1' \
    || { echo "readme-figures: a seed failed; see $root/$preset/seed*.log" >&2; exit 1; }
  python3 scripts/summarise_headline.py "$root/$preset"
}

# random_start_seed SEED: both arms of one seed, side by side when $lanes is 2.
random_start_seed() {
  seed=$1
  local arm dir cmds=()
  for arm in false true; do
    dir=$root/$preset/random-start-$arm/mnist-seed$seed
    cmds+=("encoder $dir worst-case --random-start $arm $coarse_pgd
            head $dir worst-case-mlp-adversarial $dir/encoder-worst-case/model.safetensors \
              mlp adversarial
            pgd100 $dir worst-case-mlp-adversarial")
  done
  lanes "${cmds[@]}"
}

random_start() {
  local seeds=("$@")
  [ ${#seeds[@]} -gt 0 ] || seeds=(0 1 2)
  lanes=$jobs
  [ "$lanes" -le 2 ] || lanes=2
  strong_limit=1000
  [ "$preset" != demo ] || strong_limit=500
  build
  local seed
  for seed in "${seeds[@]}"; do random_start_seed "$seed"; done
  for arm in false true; do
    echo "encoder PGD random start: $arm"
    python3 scripts/summarise_headline.py "$root/$preset/random-start-$arm"
  done
}

# check_draw DIR: a standard MLP head on DIR's worst-case encoder (PGD-10 and strong suite) and
# the encoder's vulnerability under a fresh global-cosine critic: minutes, not the robust
# head's hour, to tell a broken draw from a sound one.
check_draw() {
  local dir=$1
  head "$dir" worst-case-mlp-standard "$dir/encoder-worst-case/model.safetensors" mlp standard
  [ -f "$dir/vulnerability-cosine.json" ] ||
    "$wcmi" vulnerability --checkpoint "$dir/worst-case-mlp-standard/model.safetensors" \
      --critic global-cosine --threads "$threads" --out "$dir/vulnerability-cosine.json"
}

# lever_seed NAME 'FLAGS' SEED: one draw of the random-start worst-case encoder with a lever's
# flags, its check, then its robust MLP head (the headline's cell, an hour more).
lever_seed() {
  local name=$1 flags=$2
  seed=$3
  local dir=$root/$preset/lever-$name/mnist-seed$seed
  # Unquoted: the lever's flags split into words.
  encoder "$dir" worst-case --random-start true $flags
  check_draw "$dir"
  head "$dir" worst-case-mlp-adversarial "$dir/encoder-worst-case/model.safetensors" mlp adversarial
}

# fashion_seed SEED: the headline's worst-case MLP cells on Fashion-MNIST, with AutoAttack, under
# $root/$preset/fashion-mnist-seed$SEED.
fashion_seed() {
  seed=$1
  local dir=$root/$preset/fashion-mnist-seed$seed
  local wc=$dir/encoder-worst-case/model.safetensors
  encoder "$dir" worst-case
  head "$dir" worst-case-mlp-standard "$wc" mlp standard
  head "$dir" worst-case-mlp-adversarial "$wc" mlp adversarial
  autoattack "$dir" worst-case-mlp-standard
  autoattack "$dir" worst-case-mlp-adversarial
}

# seeds_in_lanes DEFAULT CMD [SEED ...]: CMD SEED for each seed (DEFAULT when none is given),
# side by side in up to $jobs (at most two) lanes, after the build.
seeds_in_lanes() {
  local default=$1 cmd=$2
  shift 2
  local seeds=("$@") s cmds=()
  [ ${#seeds[@]} -gt 0 ] || seeds=("$default")
  lanes=$jobs
  [ "$lanes" -le 2 ] || lanes=2
  build
  for s in "${seeds[@]}"; do cmds+=("$cmd $s"); done
  lanes "${cmds[@]}"
}

# compare_models: the models of the README's comparison, then the comparison.
compare_models() {
  seed=0
  local m=$root/$preset/compare-models rs=$root/$preset/random-start-true
  mkdir -p "$m"
  for s in 1 2; do
    [ -f "$rs/mnist-seed$s/worst-case-mlp-adversarial/strong.json" ] || random_start_seed "$s"
  done
  lanes "$wcmi train-supervised --dataset mnist --preset $preset --seed 0 --threads $threads \
           --out $m/baseline-h --resume
         encoder $m dim; head $m dim-mlp-adversarial $m/encoder-dim/model.safetensors mlp adversarial" \
    "$wcmi train-supervised --dataset mnist --adversarial --preset $preset --seed 0 \
       --threads $threads --out $m/baseline-h-adversarial --resume"
  local b
  for b in baseline-h baseline-h-adversarial; do
    [ -f "$m/$b/model.pt" ] ||
      PYTHONPATH=.bench-peer python3 scripts/export_torchscript.py "$m/$b/model.safetensors" "$m/$b/model.pt"
  done
  "$wcmi" compare std="$m/baseline-h/model.safetensors" std-torchscript="$m/baseline-h/model.pt" \
    wc-seed2="$rs/mnist-seed2/worst-case-mlp-adversarial/model.safetensors" \
    wc-seed1="$rs/mnist-seed1/worst-case-mlp-adversarial/model.safetensors" \
    dim="$m/dim-mlp-adversarial/model.safetensors" \
    adv="$m/baseline-h-adversarial/model.safetensors" \
    --dataset mnist --threads "$threads" --out "$root/$preset/compare-mnist"
  # The adversarial Baseline-H's export against its checkpoint: PGD-10 both ways, and the
  # export's vulnerability against the checkpoint's row above.
  local a=$m/baseline-h-adversarial
  "$wcmi" evaluate --checkpoint "$a/model.safetensors" --attack pgd --limit 1000 --threads "$threads" \
    --out "$a/pgd-checkpoint.json"
  "$wcmi" evaluate --model "$a/model.pt" --dataset mnist --attack pgd --limit 1000 --threads "$threads" \
    --out "$a/pgd-torchscript.json"
  "$wcmi" vulnerability --model "$a/model.pt" --layer encode --dataset mnist --threads "$threads" \
    --out "$a/vulnerability-torchscript.json"
}

# One compound command, read whole before it runs: bash reads a script as it goes, so an edit
# of this file during an hours-long run would otherwise be executed from the wrong offset.
{
  command=${1:-}
  shift || true
  case "$command" in
    headline) preset=cpu; mkdir -p "$root/$preset"; headline "$@" ;;
    fast) preset=quick; mkdir -p "$root/$preset"; headline 0 ;;
    bench)
      build
      for t in 1 2; do
        "$wcmi" bench --threads "$t" \
          --kinds supervised,supervised-adv,head-adv,dim-512,worst-case,pgd,pgd-script \
          --steps 3 --warmup 1 --rounds 3 --out "$root/bench-$t.json"
      done
      ;;
    summary) python3 scripts/summarise_headline.py "${1:?summary needs a folder}" ${2:+"$2"} ;;
    random-start)
      preset=${1:?random-start needs a preset}
      shift
      mkdir -p "$root/$preset"
      random_start "$@"
      ;;
    fashion)
      preset=cpu
      dataset=fashion-mnist
      seeds_in_lanes 0 fashion_seed "$@"
      python3 scripts/summarise_headline.py "$root/$preset" fashion-mnist
      ;;
    lever)
      preset=cpu
      name=${1:?lever needs a name}
      flags=${2:?lever needs its flags}
      shift 2
      seeds_in_lanes 1 "lever_seed $name '$flags'" "$@"
      ;;
    check-draw)
      preset=cpu
      seed=${2:?check-draw needs a folder and the seed of its heads}
      build
      check_draw "${1:?}"
      ;;
    compare)
      preset=cpu
      lanes=$jobs
      [ "$lanes" -le 2 ] || lanes=2
      build
      compare_models
      ;;
    *) sed -n '2,/^set -euo pipefail/p' "$0" | sed '$d' >&2; exit 2 ;;
  esac
  exit
}
