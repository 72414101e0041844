#!/usr/bin/env bash
# Records the real local-model sample pools the shipped examples replay (resumable: the call cache
# skips what is already recorded). CPU-hours on 2 cores; run it niced in the background:
#   nohup bash experiments/record_pools.sh > record.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/.."
ev() { nice -n 10 archsearch evaluate "$@"; }
for split in search test; do
  ev experiments/humaneval-local/baseline.yaml --task experiments/humaneval-local/task.yaml --split $split
  ev experiments/humaneval-local/pools/qwen-t08-direct.yaml --task experiments/humaneval-local/task.yaml --split $split --concurrency 4
done
for split in search test; do
  ev experiments/gsm8k-local/baseline.yaml --task experiments/gsm8k-local/task.yaml --split $split
  ev experiments/gsm8k-local/pools/qwen-t08-cot.yaml --task experiments/gsm8k-local/task.yaml --split $split --concurrency 5
done
# The weak member for the sampler benchmark's two-model space (spaces/sampling-members.yaml): search split.
ev experiments/humaneval-local/pools/smollm2-greedy.yaml --task experiments/humaneval-local/task.yaml --split search
ev experiments/humaneval-local/pools/smollm2-t08-direct.yaml --task experiments/humaneval-local/task.yaml --split search --concurrency 6
