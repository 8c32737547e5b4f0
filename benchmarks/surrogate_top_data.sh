#!/usr/bin/env bash
# The surrogate's top-region data, resumably (run it again to go on where it stopped):
#   1. real searches on NASFashionMini-v0 under seeds no earlier data used (3, then 4), 100
#      trainings each, by five searchers: regularized evolution, local search, the BANANAS-style
#      search, TPE and the poster's REINFORCE; their children are where searches end;
#   2. benchmarks/surrogate_top_data.py: second seeds of the shipped top decile, one- and two-edit
#      neighbours of the best measured architectures, then second seeds of the neighbours that
#      trained into the top decile. Each chunk exports everything so far, the searches' children
#      included, to FOLDER/samples.json.
# A search whose children the export already holds is not run again (the export keeps its rows).
# Everything trains with 1 torch thread (part of the store key), the shipped samples' configuration.
#
#   bash benchmarks/surrogate_top_data.sh [FOLDER]        (default: benchmarks/data/surrogate_top)
set -euo pipefail
dir=${1:-benchmarks/data/surrogate_top}
mkdir -p "$dir/runs"
agents=(evolution local_search bananas tpe reinforce)
runs=()
exported() {  # the export already holds this search's children (its folder is not kept)
  python -c 'import json, sys; d = json.load(open(sys.argv[1])); i = d["columns"].index("source")
sys.exit(not any(r[i] == sys.argv[2] for r in d["rows"]))' "$dir/samples.json" "run:$1" 2>/dev/null
}
search() {
  if [[ ! -d "$dir/runs/$1-s$2" ]] && exported "$1-s$2"; then
    echo "$(date -u +%FT%TZ) search $1 seed $2 already exported" >> "$dir/progress.log"
    return
  fi
  nas-gym search --env NASFashionMini-v0 --agent "$1" --budget 100 --seed "$2" \
    --out "$dir/runs/$1-s$2" --set threads=1 > "$dir/runs/$1-s$2.log" 2>&1
  runs+=(--run "$dir/runs/$1-s$2")
  echo "$(date -u +%FT%TZ) search $1 seed $2 done" >> "$dir/progress.log"
}
for agent in "${agents[@]}"; do search "$agent" 3; done
python benchmarks/surrogate_top_data.py --out "$dir" --limit "${NEIGHBOURS_FIRST:-1000000}" "${runs[@]}"
for agent in "${agents[@]}"; do search "$agent" 4; done
python benchmarks/surrogate_top_data.py --out "$dir" "${runs[@]}"
