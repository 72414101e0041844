#!/usr/bin/env bash
# Records the real local-model pools the shipped examples replay. Resumable: the call cache skips
# what is already recorded, so a stopped run loses at most the calls in flight. CPU-hours on 2 cores;
# run it niced in the background, some sections or all (in this order):
#   nohup bash experiments/record_pools.sh [samples] [layered] [layered-gsm8k] [model-tests] [prompts] [prompts-wide] > record.log 2>&1 &
# ARCHSEARCH_LOCAL_THREADS must not exceed the free cores (llama.cpp collapses when oversubscribed).
set -euo pipefail
cd "$(dirname "$0")/.."
ev() { nice -n 10 archsearch evaluate "$@"; }
HE=experiments/humaneval-local
AR=experiments/humaneval-archon
GS=experiments/gsm8k-local

samples() {  # greedy + 8 samples at T=0.8 on every HumanEval problem, greedy + 4 CoT on every GSM8K item
  ev $HE/baseline.yaml --task $HE/task.yaml --split all --concurrency 4
  ev $HE/pools/qwen-t08-direct.yaml --task $HE/task.yaml --split all --concurrency 4
  ev $HE/pools/smollm2-greedy.yaml --task $AR/task.yaml --split search
  ev $HE/pools/smollm2-t08-direct.yaml --task $AR/task.yaml --split search --concurrency 6
  # SmolLM2 on the default example's search split too: spaces/sampling-members.yaml replays it whole
  ev $HE/pools/smollm2-greedy.yaml --task $HE/task.yaml --split search --concurrency 2
  ev $HE/pools/smollm2-t08-direct.yaml --task $HE/task.yaml --split search --concurrency 2
  ev $GS/baseline.yaml --task $GS/task.yaml --split all --concurrency 5
  ev $GS/pools/qwen-t08-cot.yaml --task $GS/task.yaml --split all --concurrency 5
}

layered() {  # judges, rankers, critics and fusers over the HumanEval pool (experiments/humaneval-archon),
  # the search split first: it is what a search and the benchmarks replay
  for split in search test; do
    for pool in verify-coder rank4 rank8 fuse4 fuse8 verify-coder-greedy smol-samples verify-smol \
                verify-smol-greedy verify-of-smol-by-smol fuse4-smol verify-of-smol-by-coder critique-fuse2; do
      ev $AR/pools/$pool.yaml --task $AR/task.yaml --split $split --concurrency 4
    done
  done
}

layered-gsm8k() {  # the LLM judge of the greedy answer and the fuser of the 4 samples, GSM8K search split
  for pool in verify-coder-greedy fuse4; do
    ev $GS/pools/$pool.yaml --task $GS/task.yaml --split search --concurrency 4
  done
}

model-tests() {  # test cases written by the model (test source: model): Qwen on every HumanEval problem,
  # 2 calls of 5 cases each at T=0.8; SmolLM2 on the 40 search problems of the layered example
  ev $HE/pools/qwen-tests.yaml --task $HE/task.yaml --split all --concurrency 4
  ev $HE/pools/smol-tests.yaml --task $AR/task.yaml --split search --concurrency 4
}

prompts() {  # prompt variants: greedy + 4 samples at T=0.8 per variant on every item
  ev $GS/pools/qwen-strict.yaml --task $GS/task.yaml --split all --concurrency 4
  ev $GS/pools/qwen-strict-demos4.yaml --task $GS/task.yaml --split all --concurrency 4
  ev $HE/pools/qwen-edge-cases.yaml --task $HE/task.yaml --split all --concurrency 4
}

prompts-wide() {  # more GSM8K prompt variants, greedy + 4 samples each on the search split only: the
  # leave-one-variant-out check (spaces/sampling-cot-prompts-wide.yaml) needs many variants of one model
  for variant in default-demos2 strict-demos2 concise check default-demos4 plain concise-demos2 check-demos2; do
    ev $GS/pools/qwen-$variant-search.yaml --task $GS/task.yaml --split search --concurrency 4
  done
}

[ $# -gt 0 ] || set -- samples layered layered-gsm8k model-tests prompts
for section in "$@"; do
  case "$section" in
    samples|layered|layered-gsm8k|model-tests|prompts|prompts-wide) echo "== $section $(date -u +%FT%TZ)"; "$section" ;;
    *) echo "usage: $0 [samples] [layered] [layered-gsm8k] [model-tests] [prompts] [prompts-wide]" >&2; exit 2 ;;
  esac
done
echo "== done $(date -u +%FT%TZ)"
