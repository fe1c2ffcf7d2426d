#!/usr/bin/env bash
# The GPU reference measurements, one stage per device window. A window is 15 minutes in all (the machine's
# start, the transfers and idle time included), so a stage is one command that ends within 8 minutes on an
# H200, the wheels' install included: its runs stop the harness's way (SIGTERM: checkpointed, recorded as
# `interrupted`) at DEADLINE_S, a run that does not answer is killed KILL_GRACE_S later, and the archive
# and summary follow. Worst case: install (~40 s) + DEADLINE_S (390) + KILL_GRACE_S (30) + archive and
# summary (~15 s) = 475 s.
#
#   bash benchmarks/reference.sh STAGE OUT_DIR
#
# Each run's folder (without checkpoints) goes into OUT_DIR/STAGE.tar.gz as soon as the run ends, so a
# command killed at its limit loses at most the run in flight. OUT_DIR/STAGE.log is the whole log and
# OUT_DIR/STAGE-summary.txt, written last, the table of the stage's figures.
#
# Stages, in the order the windows take them (expected time on an H200, from the H100's 2026-11-24 logs):
#   core-h200     amp and the bare loop alternated over the same STEPS steps (A B A B), then adam8bit,
#                 zero_offload and act_ckpt: gpt2-124m at the micro-batches their fits chose on the H100
#                 80GB (128; act_ckpt 256), which fit an H200 too; ~6.5 min
#   gpu-tests     every gpu-marked test (fit and OOM, NVML and energy, pinned memory, CPU Adam, bitsandbytes,
#                 compile, the memory model against measured peaks, the profiler); ~5 min
#   memory-check  zero_offload, zero_offload_fp32acc and amp at gpt-1.3b, micro-batch 1, 2 steps: measured
#                 peaks beside the memory model's; ~4 min
#   toolbox-a|b|c the nine newer strategies, three a stage, STEPS steps at micro-batch 64 (amp's eager fit
#                 on an 80 GB card: it fits every one of them); ~5 min each
#   capacity-24   the capacity confirmation at a 24 GiB cap for the mission's four and zero_offload+act_ckpt;
#                 every probe is written as it ends, so a stopped stage keeps what it confirmed; up to 6.5 min
# Environment: PYTHON (python3), PRESET (gpt2-124m; gpt-1.3b for memory-check), STEPS (20), DEADLINE_S (390),
# KILL_GRACE_S (30), MICRO_BATCH (instead of the stage's fixed micro-batches), DEVICE (cuda) and TOOLBOX_A
# (toolbox-a's strategies, for a rehearsal of the deadline without torchao's compile): a rehearsal
# on the CPU before a window is `PRESET=tiny MICRO_BATCH=16 DEVICE=cpu STEPS=2 bash benchmarks/reference.sh`.
set -uo pipefail

STAGES=(core-h200 gpu-tests memory-check toolbox-a toolbox-b toolbox-c capacity-24 answer-24)
usage() {
  echo "error: usage: bash benchmarks/reference.sh STAGE OUT_DIR (stages: ${STAGES[*]})" >&2
  exit 2
}
[ $# -eq 2 ] || usage
STAGE=$1 OUT=$2
[[ " ${STAGES[*]} " == *" $STAGE "* ]] || usage
mkdir -p "$OUT" 2>/dev/null && [ -w "$OUT" ] || { echo "error: cannot write to $OUT: pass a writable folder" >&2; exit 2; }
OUT=$(cd "$OUT" && pwd)

cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
case $STAGE in memory-check) PRESET=${PRESET:-gpt-1.3b} ;; *) PRESET=${PRESET:-gpt2-124m} ;; esac
STEPS=${STEPS:-20}
DEADLINE_S=${DEADLINE_S:-390}
KILL_GRACE_S=${KILL_GRACE_S:-30}
WORK=$(mktemp -d)
RUNS="$WORK/runs"
START=$SECONDS
LOG="$OUT/$STAGE.log"

left() { echo $((DEADLINE_S - (SECONDS - START))); }

# Everything so far, without checkpoints, replacing the stage's archive in one rename.
archive() {
  tar -czf "$OUT/.$STAGE.tar.gz.tmp" --exclude=checkpoints -C "$WORK" . && mv "$OUT/.$STAGE.tar.gz.tmp" "$OUT/$STAGE.tar.gz"
}

# One step of the stage with what is left of its time (SIGTERM at the deadline, SIGKILL KILL_GRACE_S
# later), archived as soon as it ends.
timed() {
  local name=$1 remaining status
  shift
  remaining=$(left)
  if [ "$remaining" -le 10 ]; then
    echo "skipped (stage deadline reached): $name"
    echo "$name" >>"$WORK/skipped.txt"
    return 124
  fi
  echo "== $name ($(date -u +%T), ${remaining}s left)"
  timeout -s TERM -k "$KILL_GRACE_S" "$remaining" "$@"
  status=$?
  echo "== $name ended with status $status after $((SECONDS - START))s"
  archive
  return $status
}

# A run of the harness: a fixed micro-batch (fitting was proven where these sizes come from), STEPS
# optimizer steps after two untimed ones, every step's time in metrics.jsonl, one evaluation at the end.
bench() {
  local name=$1 strategy=$2 micro_batch=$3
  shift 3
  timed "$name" "$PY" -m harness bench --strategy "$strategy" --preset "$PRESET" --micro-batch "${MICRO_BATCH:-$micro_batch}" \
    --max-steps "$STEPS" --warmup-steps 2 --set log_interval_s=0 --set eval_points=1 --device "${DEVICE:-auto}" \
    --runs-dir "$RUNS" --quiet "$@"
}

# The bare loop over the same steps, at amp's micro-batch, with the same statistic (the harness's steady
# median of per-step throughput).
bare() {
  timed "$1" "$PY" benchmarks/bare_loop.py --preset "$PRESET" --micro-batch "${MICRO_BATCH:-128}" --steps "$STEPS" \
    --warmup 2 --device "${DEVICE:-cuda}" --json "$WORK/$1.json" $([ "${DEVICE:-cuda}" = cpu ] && echo --no-compile)
}

# nvidia-smi and the doctor (which builds DeepSpeed's CPU-Adam op on a fresh machine: about 45 s).
describe_machine() {
  timed machine sh -c '{ command -v nvidia-smi >/dev/null && nvidia-smi; "$1" -m harness env; } >"$2" 2>&1' \
    sh "$PY" "$WORK/machine.txt"
}

stage() {
  case $STAGE in
    core-h200)
      describe_machine
      bench amp-1 amp 128; bare bare-1; bench amp-2 amp 128; bare bare-2
      bench adam8bit adam8bit 128; bench zero_offload zero_offload 128; bench act_ckpt act_ckpt 256
      ;;
    gpu-tests)
      describe_machine
      HARNESS_GPU_EVIDENCE="$WORK/gpu-tests" timed pytest "$PY" -m pytest -q -m gpu -p no:cacheprovider
      ;;
    memory-check)
      describe_machine
      for strategy in zero_offload zero_offload_fp32acc amp; do
        STEPS=2 bench "$strategy" "$strategy" 1
      done
      ;;
    toolbox-a) for s in ${TOOLBOX_A:-ao_adam8bit ao_adam4bit paged_adam8bit}; do bench "$s" "$s" 64; done ;;
    toolbox-b) for s in ao_cpu_offload fsdp2_offload sel_ckpt; do bench "$s" "$s" 64; done ;;
    toolbox-c) for s in act_offload fp8 fused_ce; do bench "$s" "$s" 64; done ;;
    capacity-24)
      describe_machine
      timed capacity "$PY" -m harness capacity --gpu-memory-gib 24 --quiet --out "$WORK/capacity.json" \
        --strategies amp,adam8bit,zero_offload,act_ckpt,zero_offload+act_ckpt
      ;;
    answer-24)
      # The measured answer at a 24 GiB cap for two strategies (answer.json is rewritten after each run,
      # so a deadline keeps every measured candidate; the summary sets each beside its prediction).
      describe_machine
      timed answer "$PY" -m harness answer --gpu-memory-gib 24 --budget 24h --quiet --out "$WORK/answer.json" \
        --runs-dir "$WORK/runs" --strategies "${ANSWER_STRATEGIES:-amp,zero_offload+act_ckpt}" \
        --presets gpt-51m,gpt-82m,gpt2-124m,gpt-200m,gpt-350m,gpt-540m,gpt-760m,gpt-1b,gpt-1.3b
      ;;
  esac
}

exec > >(tee "$LOG") 2>&1
echo "stage $STAGE: preset $PRESET, $STEPS steps, deadline ${DEADLINE_S}s, $(date -u +%FT%TZ)"
stage
status=$?
[ -s "$WORK/skipped.txt" ] && status=124
echo "stage $STAGE ended after $((SECONDS - START))s, exit status $status"
{
  "$PY" benchmarks/stage_summary.py "$WORK" "$STAGE"
  [ "$STAGE" = gpu-tests ] && grep -E "[0-9]+ (passed|failed|error)" "$LOG" | tail -1
} >"$OUT/$STAGE-summary.txt" 2>&1
archive
rm -rf "$WORK"
cat "$OUT/$STAGE-summary.txt"
exit "$status"
