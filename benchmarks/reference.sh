#!/usr/bin/env bash
# The reference measurements of docs/results/h100, one stage at a time: each stage is one whole check that
# ends well inside ten minutes on an H100 (runs still going at DEADLINE_S are stopped the harness's way,
# SIGTERM: checkpointed and recorded as `interrupted`), and leaves three files in OUT_DIR:
#   STAGE.tar.gz (run folders without checkpoints, test evidence, profiles), STAGE.log, STAGE-summary.txt
#
#   bash benchmarks/reference.sh STAGE OUT_DIR
#
# Stages:
#   gpu-tests          pytest -m gpu: the harness's CUDA paths and the step profiler
#   gpu-tests-toolbox  pytest -m gpu for the newer strategies (their `experimental` flag waits on this)
#   core               amp and adam8bit, the bare loop at amp's micro-batch, and a profile of amp's step
#   offload            zero_offload, and a profile of its step
#   ckpt               act_ckpt and adam8bit+act_ckpt, each with its own fit
#   ckpt-offload       zero_offload+act_ckpt
#   toolbox-a|b|c      the newer strategies, three per stage
# Environment: PYTHON (python3), PRESET (gpt2-124m), BUDGET (60s; 30s for toolbox stages), DEADLINE_S (540).
set -uo pipefail

usage() {
  echo "error: usage: bash benchmarks/reference.sh STAGE OUT_DIR (stages: ${STAGES[*]})" >&2
  exit 2
}
STAGES=(gpu-tests gpu-tests-toolbox core offload ckpt ckpt-offload toolbox-a toolbox-b toolbox-c)
[ $# -eq 2 ] || usage
STAGE=$1 OUT=$2
[[ " ${STAGES[*]} " == *" $STAGE "* ]] || usage
mkdir -p "$OUT" 2>/dev/null && [ -w "$OUT" ] || { echo "error: cannot write to $OUT: pass a writable folder" >&2; exit 2; }

cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PRESET=${PRESET:-gpt2-124m}
DEADLINE_S=${DEADLINE_S:-540}
case $STAGE in toolbox-*) BUDGET=${BUDGET:-30s} ;; *) BUDGET=${BUDGET:-60s} ;; esac
WORK=$(mktemp -d)
START=$SECONDS
LOG="$OUT/$STAGE.log"

left() { echo $((DEADLINE_S - (SECONDS - START))); }

# Run a command with what is left of the stage's time; SIGTERM at the deadline, SIGKILL 60 s later.
timed() {
  local remaining
  remaining=$(left)
  if [ "$remaining" -le 10 ]; then
    echo "skipped (stage deadline reached): $*"
    return 124
  fi
  timeout -s TERM -k 60 "$remaining" "$@"
}

sweep() {
  timed "$PY" -m harness sweep --strategies "$1" --preset "$PRESET" --budget "$BUDGET" \
    --runs-dir "$WORK/runs" --report "$WORK/report.html" --quiet
}

# The micro-batch a strategy's run in this stage used (fitted), for the tools that follow it.
micro_batch_of() {
  "$PY" - "$WORK/runs" "$1" <<'EOF'
import json, sys
from pathlib import Path
for path in sorted(Path(sys.argv[1]).glob("*/result.json")):
    result = json.loads(path.read_text())
    if result["strategy"]["name"] == sys.argv[2] and result["settings"].get("micro_batch"):
        print(result["settings"]["micro_batch"])
        break
EOF
}

profile() {
  local strategy=$1 micro_batch
  micro_batch=$(micro_batch_of "$strategy")
  timed "$PY" benchmarks/profile_step.py --strategy "$strategy" --preset "$PRESET" \
    ${micro_batch:+--micro-batch "$micro_batch"} --out "$WORK/profile-$strategy"
}

gpu_tests() {
  HARNESS_GPU_EVIDENCE="$WORK/gpu-tests" timed "$PY" -m pytest -q -m gpu -p no:cacheprovider "$@"
}

stage() {
  case $STAGE in
    gpu-tests) gpu_tests tests/test_gpu.py tests/test_benchmarks.py ;;
    gpu-tests-toolbox) gpu_tests tests/test_gpu_toolbox.py ;;
    core)
      sweep amp,adam8bit
      local micro_batch
      micro_batch=$(micro_batch_of amp)
      if [ -n "$micro_batch" ]; then
        timed "$PY" benchmarks/bare_loop.py --preset "$PRESET" --micro-batch "$micro_batch" \
          --json "$WORK/bare_loop.json"
      fi
      profile amp
      ;;
    offload) sweep zero_offload && profile zero_offload ;;
    ckpt) sweep act_ckpt,adam8bit+act_ckpt ;;
    ckpt-offload) sweep zero_offload+act_ckpt ;;
    toolbox-a) sweep ao_adam8bit,ao_adam4bit,paged_adam8bit ;;
    toolbox-b) sweep ao_cpu_offload,fsdp2_offload,sel_ckpt ;;
    toolbox-c) sweep act_offload,fp8,fused_ce ;;
  esac
}

summarize() {
  [ -d "$WORK/runs" ] && "$PY" -m harness runs --runs-dir "$WORK/runs"
  "$PY" - "$WORK" <<'EOF'
import json, sys
from pathlib import Path
root = Path(sys.argv[1])
for path in sorted(root.glob("bare_loop.json")) + sorted(root.glob("profile-*/profile.json")):
    figures = json.loads(path.read_text())
    name = path.parent.name if path.name == "profile.json" else path.stem
    mfu = figures.get("mfu")
    mfu_text = "n/a" if mfu is None else f"{100 * mfu:.1f}%"
    print(f"{name}: {figures['tokens_per_s']:,.0f} tokens/s, MFU {mfu_text}, micro-batch {figures['micro_batch']}")
EOF
  case $STAGE in gpu-tests*) grep -E "[0-9]+ (passed|failed|error)" "$LOG" | tail -1 ;; esac
}

exec > >(tee "$LOG") 2>&1
echo "stage $STAGE: preset $PRESET, budget $BUDGET, deadline ${DEADLINE_S}s, $(date -u +%FT%TZ)"
timeout 240 "$PY" -m harness env >"$WORK/machine.txt" 2>&1  # builds CPU-Adam if missing: about 45 s
command -v nvidia-smi >/dev/null && timeout 60 nvidia-smi >>"$WORK/machine.txt" 2>&1
stage
status=$?
echo "stage $STAGE ended after $((SECONDS - START))s, exit status $status"

# What comes back: small files only (run folders without checkpoints; a trace only if it stays small).
find "$WORK" -type d -name checkpoints -prune -exec rm -rf {} +
find "$WORK" -name trace.json -size +40M -delete
summarize >"$OUT/$STAGE-summary.txt" 2>&1
tar -czf "$OUT/$STAGE.tar.gz" -C "$WORK" .
rm -rf "$WORK"
cat "$OUT/$STAGE-summary.txt"
exit "$status"
