#!/usr/bin/env bash
# Steps of one GPU session on the lent machine (no internet; MAX carried as wheels, see
# shared/notes/MAX_26_7.md and benchmarks/README.md). Usage, one step per `device` call:
#   bash benchmarks/gpu_session.sh carry .w1        # copy one wheel folder to /tmp/wh
#   bash benchmarks/gpu_session.sh install          # assemble + install wheels, write checkpoints
#   bash benchmarks/gpu_session.sh STEP [STEP...]   # quote | overhead | softcap | forced | peer |
#                                                   # structured | server
# Results (JSON + logs) go to $OUT (default /tmp/quote-gpu).
set -uo pipefail
OUT=${OUT:-/tmp/quote-gpu}
mkdir -p "$OUT"
export PYTHONPATH=/tmp/site:/tmp/stub:$PWD
export MAX_SERVE_DISABLE_TELEMETRY=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
G1B=/tmp/g1b
PY=python3

run() {  # run NAME TIMEOUT CMD...: log to $OUT/NAME.log, never abort the session
  local name=$1 limit=$2
  shift 2
  echo "== $name ($(date +%T))"
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  echo "== $name rc=$? ($(date +%T))"
  tail -n 25 "$OUT/$name.log"
}

step_install() {
  cd /tmp/wh || exit 1
  cat maxcore.part.* >max_core-26.7.0-py3-none-manylinux_2_34_x86_64.whl
  cat mojoc.part.* >mojo_compiler-1.2.0-py3-none-manylinux_2_34_x86_64.whl
  rm -f ./*.part.*
  cd - >/dev/null || exit 1
  $PY -m pip install -q --no-index --no-deps --no-compile --target /tmp/site /tmp/wh/*.whl || exit 1
  mkdir -p /tmp/stub/av && touch /tmp/stub/av/__init__.py
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$OUT/gpu.txt"
  cat "$OUT/gpu.txt"
  run checkpoint 120 $PY benchmarks/bench_gpu.py checkpoint --model $G1B
}

if [ "${1:-}" = carry ]; then
  mkdir -p /tmp/wh && cp "$2"/* /tmp/wh/ && ls /tmp/wh | wc -l
  exit 0
fi
for step in "$@"; do
  case $step in
  install) step_install ;;
  quote) run quote 560 $PY benchmarks/bench_gpu.py quote --model $G1B --out "$OUT" --reps 5 --mem 0.25 ;;
  overhead) run overhead 500 $PY benchmarks/bench_overhead.py --devices gpu --model $G1B --mem 0.3 --batch-sizes 1,16,64 --reps 3 --steps 64 --breakdown --out "$OUT/overhead.json" ;;
  softcap) run softcap 400 $PY benchmarks/bench_gpu.py softcap --model /tmp/tiny-softcap-bf16 --out "$OUT" --mem 0.2 ;;
  forced) run forced 200 $PY benchmarks/bench_forced.py --devices gpu --model $G1B --mem 0.5 --reps 3 --out "$OUT/forced.json" ;;
  peer) run peer 240 $PY benchmarks/bench_hf_peer.py --devices gpu --model $G1B --mem 0.5 --hf-dtype bfloat16 --out "$OUT/peer.json" ;;
  structured) run structured 400 $PY benchmarks/bench_structured.py --devices gpu --model $G1B --mem 0.3 --seeds 2 --out "$OUT/structured.json" ;;
  server) run server 500 $PY benchmarks/bench_server.py --devices gpu --model $G1B --out "$OUT/server.json" ;;
  *) echo "unknown step $step" ;;
  esac
done
