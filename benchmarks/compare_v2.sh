#!/usr/bin/env bash
# Every agent on NASSurrogate-v2 with seed noise, each run scored by the noiseless 9-epoch value
# of the architecture it returns: two equal-seconds budgets (about 100 and 437 three-epoch
# trainings: a random architecture's predicted 3-epoch training takes 8.0 s on average) and 437
# trainings, on seeds 0..29 and on 15 seeds from an offset never used before (300..314).
#
#     bash benchmarks/compare_v2.sh [OUT_PREFIX] [WORKERS]
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${1:-benchmarks/results/compare_v2}
workers=${2:-2}
# the poster's own curriculum: the layer bound and the training epochs raised during the search
curriculum="reinforce:curriculum=[[0.0,4,1],[0.5,6,3],[0.8,15,9]]"
agents="reinforce,$curriculum,reinforce_uct,random,evolution,local_search,bananas,tpe"
agents="$agents,successive_halving,hyperband,bohb,ppo,a2c,dqn,maskable_ppo"
run() {
  python benchmarks/compare_agents.py --env NASSurrogate-v2 --set noise=true --agents "$agents" \
    --workers "$workers" "$@"
}
for seeds in "30 0" "15 300"; do
  set -- $seeds
  n=$1 offset=$2
  run --seeds "$n" --seed-offset "$offset" --budget-seconds 800 --out "${prefix}_800s_${offset}"
  run --seeds "$n" --seed-offset "$offset" --budget-seconds 3500 --out "${prefix}_3500s_${offset}"
  run --seeds "$n" --seed-offset "$offset" --budget 437 --out "${prefix}_437_${offset}"
done
