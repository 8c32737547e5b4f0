#!/usr/bin/env bash
# Grows the surrogate's training data in steps of 100 samples; each step exports the samples file.
cd /work/surrogate
. /work/main/.venv/bin/activate
for n in $(seq 100 100 3000); do
  nas-gym samples build --env NASFashionMini-v0 --n $n --seed 0 --second-seed-every 8 \
    --workers 1 --threads 1 --out /work/surrogate/samples.json --store /work/surrogate/samples.sqlite > /work/surrogate/last.log 2>&1 || exit 1
  echo "$(date -u +%FT%TZ) n=$n" >> /work/surrogate/progress.log
done
