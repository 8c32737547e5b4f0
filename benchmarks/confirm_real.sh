#!/usr/bin/env bash
# The augmented poster agent with real training: reinforce_uct on NASFashionMini-v0, seeds 0-2, 100
# trainings each at the surrogate data's configuration (1 torch thread), each search's best
# architecture then trained from scratch at 3x the search's epochs (nas-gym evaluate --run); beside
# it the best architectures of regularized evolution's three 100-training searches of the shipped
# samples (sources runs/evolution-s0..2 in nas_gym/data/surrogate/fashion_mini_samples.json),
# trained the same way (9 epochs, the search's seed). Resumable: run it again to go on.
#
#   bash benchmarks/confirm_real.sh [FOLDER]     (default: benchmarks/results/reinforce_uct_real)
set -euo pipefail
dir=${1:-benchmarks/results/reinforce_uct_real}
mkdir -p "$dir"
for s in 0 1 2; do
  nas-gym search --env NASFashionMini-v0 --agent reinforce_uct --budget 100 --seed "$s" \
    --out "$dir/reinforce_uct-s$s" --set threads=1 > "$dir/reinforce_uct-s$s.log" 2>&1
done
final() {  # agent, seed, then evaluate's arguments
  local agent=$1 seed=$2
  shift 2
  echo "== $agent seed $seed"
  nas-gym evaluate "$@" --set threads=1
}
{
  for s in 0 1 2; do final reinforce_uct "$s" --run "$dir/reinforce_uct-s$s"; done
  python - <<'EOF' > "$dir/evolution_best.txt"
import json
from nas_gym.build.samples import SampleSet
import nas_gym, pathlib
path = pathlib.Path(nas_gym.__file__).parent / "data" / "surrogate" / "fashion_mini_samples.json"
rows = SampleSet.load(path).samples
for s in range(3):
    best = max((r for r in rows if r.source == f"runs/evolution-s{s}"), key=lambda r: r.accuracy)
    print(s, best.arch, best.accuracy)
EOF
  while read -r s arch _; do
    final evolution "$s" "$arch" --env NASFashionMini-v0 --seed "$s" --epochs 9 \
      --store "$dir/evolution_final.sqlite"
  done < "$dir/evolution_best.txt"
} 2>&1 | tee "$dir/final.log"
