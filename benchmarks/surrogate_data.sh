#!/usr/bin/env bash
# Builds the surrogate's training data, resumably (run it again to go on where it stopped):
#   - real searches on NASFashionMini-v0 (evolution and REINFORCE, seeds 0-2, 100 trainings each):
#     their trained children are the trajectories that cover the good region;
#   - random architectures, depth uniform in 1..15 (every 8th also with seed 1), in steps of 100 up
#     to N = END (default 2400: the shipped file, 3,141 trainings with the searches'); each step
#     exports every row so far, the searches' included, to FOLDER/samples.json.
# Everything trains with 1 torch thread (part of the store key), the shipped samples' configuration.
#
#   [END=2400] bash benchmarks/surrogate_data.sh [FOLDER]        (default: surrogate_data)
set -euo pipefail
dir=${1:-surrogate_data}
mkdir -p "$dir/runs"
runs=()
for seed in 0 1 2; do
  for agent in evolution reinforce; do
    nas-gym search --env NASFashionMini-v0 --agent "$agent" --budget 100 --seed "$seed" \
      --out "$dir/runs/$agent-s$seed" --set threads=1
    runs+=(--run "$dir/runs/$agent-s$seed")
  done
done
for n in $(seq 100 100 "${END:-2400}"); do
  nas-gym samples build --env NASFashionMini-v0 --n "$n" --seed 0 --second-seed-every 8 \
    --workers 1 --threads 1 "${runs[@]}" --out "$dir/samples.json" --store "$dir/samples.sqlite"
  echo "$(date -u +%FT%TZ) n=$n" >> "$dir/progress.log"
done
