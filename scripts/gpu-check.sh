#!/usr/bin/env bash
# WebGPU on a real GPU, in one run of at most about 6 minutes (the total is capped, so a rerun fits
# in a second one): the adapter, the WebGPU suites, the kernel and model benchmarks with kernel
# profiles, the PyTorch peers in the same job, the quick pipeline and the default config's step 1
# on WebGPU. Each stage runs under its own time budget (`timeout`) with its own log; a stage that
# fails or runs out of time does not stop the rest; summary.tsv lists stage, status, seconds.
#
#   bash scripts/gpu-check.sh [--small] [--pack | --no-pack] [OUTDIR]
#   on the GPU machine (see ../shared/device/):  bash .devkit/enter.sh bash scripts/gpu-check.sh
#
# OUTDIR defaults to $OUT. Into it: summary.tsv (stage, status, seconds, budget_s, note),
# logs/<stage>.log, runs/ (the run directories), gpu-check.log (every log in stage order).
# --pack (the default when OUTDIR comes from $OUT, the device tool's folder, which hands back at
# most 8 files) also writes gpu-check.tgz (logs and runs without weights and activations) and then
# removes logs/ and runs/, leaving three files.
#
# --small (or GPU_CHECK_SMALL=1): small shapes everywhere, for a software adapter and for
# test/scripts/gpu-check.test.ts: the suites are a subset (adapter, profile, layout, model-webgpu,
# parity), the benchmarks run --small --quick, the quick pipeline is steps 0-2 and step 1 is the
# default config at 1 seed and 4 training steps.
# Statuses: ok; failed (exit code N); timeout (its budget, or what was left of the total); skipped
# (no WebGPU adapter, no CUDA for the peers, peer scripts not found, not selected, total spent).
# With REQUIRE_WEBGPU=1 a missing adapter is a failure, not a skip. The exit code is 1 when a
# stage failed or timed out, else 0.
# Environment: GPU_CHECK_STAGES="probe suites ..." runs only those (the others are 'skipped: not
# selected'); GPU_CHECK_TOTAL_S caps the whole run (default 345 s, 300 with --small);
# GPU_CHECK_BUDGET_<STAGE>=seconds (stage name upper-cased, '-' as '_') overrides one budget;
# PEERS_DIR (default ../shared/peers, else shared/peers); PYTHON (default python3).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD

small=${GPU_CHECK_SMALL:-0}
pack=""
outdir=""
for a in "$@"; do
  case "$a" in
    --small) small=1 ;;
    --pack) pack=1 ;;
    --no-pack) pack=0 ;;
    -h | --help) sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "gpu-check: unknown flag $a (see --help)" >&2; exit 2 ;;
    *) outdir=$a ;;
  esac
done
if [ -z "$outdir" ]; then
  outdir=${OUT:-}
  [ -z "$pack" ] && pack=1
fi
pack=${pack:-0}
[ -z "$outdir" ] && { echo "gpu-check: name an output folder, or set OUT" >&2; exit 2; }
mkdir -p "$outdir" && outdir=$(cd "$outdir" && pwd)
logs=$outdir/logs
runs=$outdir/runs
rm -rf "$logs" "$runs" "$outdir/summary.tsv" "$outdir/gpu-check.log" "$outdir/gpu-check.tgz"
mkdir -p "$logs" "$runs"
summary=$outdir/summary.tsv

export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
export PYTHONUNBUFFERED=1
python=${PYTHON:-python3}
tsx="node --import tsx"
if [ "$small" = 1 ]; then total=${GPU_CHECK_TOTAL_S:-300}; else total=${GPU_CHECK_TOTAL_S:-345}; fi
start=$SECONDS

STAGES=(probe suites bench-webgpu peer-torch bench-model peer-hf quick-run step1)
declare -A BUDGET_FULL=([probe]=15 [suites]=50 [bench-webgpu]=45 [peer-torch]=30 [bench-model]=50 [peer-hf]=45 [quick-run]=70 [step1]=40)
declare -A BUDGET_SMALL=([probe]=20 [suites]=60 [bench-webgpu]=60 [peer-torch]=30 [bench-model]=60 [peer-hf]=30 [quick-run]=90 [step1]=60)
selected=" ${GPU_CHECK_STAGES:-${STAGES[*]}} "

printf 'stage\tstatus\tseconds\tbudget_s\tnote\n' > "$summary"
failures=0
record() { # stage status seconds budget note
  printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >> "$summary"
  printf 'gpu-check: %-13s %-8s %6ss (budget %ss) %s\n' "$1" "$2" "$3" "$4" "$5"
  case "$2" in failed | timeout) failures=$((failures + 1)) ;; esac
}

budget_of() {
  local var="GPU_CHECK_BUDGET_$(echo "$1" | tr 'a-z-' 'A-Z_')"
  if [ -n "${!var:-}" ]; then echo "${!var}"
  elif [ "$small" = 1 ]; then echo "${BUDGET_SMALL[$1]}"
  else echo "${BUDGET_FULL[$1]}"; fi
}

# stage NAME COMMAND: runs COMMAND (a bash command line) under the stage's budget, clamped to what
# is left of the total; exit 77 from COMMAND means skipped (its last output line says why).
stage() {
  local name=$1 cmd=$2 log=$logs/$1.log budget left t0 rc secs status note
  budget=$(budget_of "$name")
  if [[ $selected != *" $name "* ]]; then
    echo "not selected (GPU_CHECK_STAGES=${GPU_CHECK_STAGES:-})" > "$log"
    record "$name" skipped 0 "$budget" "not selected"
    return
  fi
  left=$((total - (SECONDS - start)))
  if [ "$left" -lt 5 ]; then
    echo "skipped: the total budget of ${total}s is spent" > "$log"
    record "$name" skipped 0 "$budget" "total budget ${total}s spent"
    return
  fi
  [ "$budget" -gt "$left" ] && budget=$left
  { echo "# gpu-check stage $name, budget ${budget}s, started $(date -u +%FT%TZ)"; echo "# \$ $cmd"; } > "$log"
  t0=$(date +%s.%N)
  timeout --kill-after=5 "$budget" bash -c "set -o pipefail; $cmd" >> "$log" 2>&1
  rc=$?
  secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  note=""
  case $rc in
    0) status=ok ;;
    124 | 137) status=timeout; note="stopped after ${budget}s" ;;
    77) status=skipped; note=$(grep -v '^#' "$log" | tail -1) ;;
    *) status=failed; note="exit code $rc: $(grep -v '^#' "$log" | grep -v '^\s*$' | tail -1 | cut -c1-160)" ;;
  esac
  echo "# gpu-check stage $name: $status in ${secs}s${note:+ ($note)}" >> "$log"
  record "$name" "$status" "$secs" "$budget" "$note"
}

# skip NAME STATUS NOTE: records a stage that cannot run here, with a log saying why.
skip() {
  echo "$2: $3" > "$logs/$1.log"
  record "$1" "$2" 0 "$(budget_of "$1")" "$3"
}

echo "gpu-check: $([ "$small" = 1 ] && echo 'small shapes' || echo 'full shapes') into $outdir (total ${total}s)"

# ---- the adapter ---------------------------------------------------------------------------------
stage probe "uname -srm; node --version; (nvidia-smi -L 2>/dev/null || echo 'nvidia-smi: not here'); $tsx scripts/probe-adapter.ts"
adapter=none
if grep -q '"software":false' "$logs/probe.log"; then adapter=hardware
elif grep -q '"software":true' "$logs/probe.log"; then adapter=software; fi
echo "gpu-check: adapter: $adapter"

# webgpu_stage NAME COMMAND: a stage that needs an adapter
webgpu_stage() {
  if [ "$adapter" = none ]; then
    if [ "${REQUIRE_WEBGPU:-}" = 1 ]; then skip "$1" failed "no WebGPU adapter (REQUIRE_WEBGPU=1)"
    else skip "$1" skipped "no WebGPU adapter"; fi
  else stage "$1" "$2"; fi
}

# ---- the peers: CUDA PyTorch, checked once -------------------------------------------------------
peers=${PEERS_DIR:-}
if [ -z "$peers" ]; then
  for d in "$root/../shared/peers" "$root/shared/peers"; do [ -f "$d/torch_gpu_ref.py" ] && { peers=$d; break; }; done
fi
cuda=""
peer_stage() { # NAME SCRIPT
  if [[ $selected != *" $1 "* ]]; then stage "$1" true; return; fi
  if [ -z "$peers" ] || [ ! -f "$peers/$2" ]; then skip "$1" skipped "peer script $2 not found (PEERS_DIR, ../shared/peers, shared/peers)"; return; fi
  if [ -z "$cuda" ]; then
    cuda=$(timeout 60 "$python" -c "import torch; assert torch.cuda.is_available(), 'torch ' + torch.__version__ + ' sees no CUDA device'; print('ok', torch.__version__, torch.cuda.get_device_name(0))" 2>&1 | tail -1)
    [ -z "$cuda" ] && cuda="$python did not answer"
  fi
  if [[ $cuda != ok* ]]; then skip "$1" skipped "no CUDA: $cuda"; return; fi
  stage "$1" "echo '# $cuda'; $python '$peers/$2'"
}

# ---- the stages ------------------------------------------------------------------------------------
tiny=$runs/tiny-quick.json
step1cfg=$runs/step1-config.json
echo '{"train": {"steps": 4, "evalEvery": 2, "warmupSteps": 1, "gate": 0}}' > "$tiny"  # 4 steps learn nothing: gate 0 lets step 2 run on them
echo '{"train": {"seeds": 1, "steps": 4, "evalEvery": 2, "warmupSteps": 1, "evalBatches": 1, "lengthGeneralisation": [128]}}' > "$step1cfg"
stamp="while IFS= read -r l; do printf '%(%T)T %s\n' -1 \"\$l\"; done"

if [ "$small" = 1 ]; then
  webgpu_stage suites "REQUIRE_WEBGPU=1 $tsx scripts/test.ts test/engine/wgsl/adapter test/engine/wgsl/profile test/engine/wgsl/layout test/mamba/model-webgpu test/mamba/parity"
  webgpu_stage bench-webgpu "$tsx bench/webgpu.ts --small --quick"
  peer_stage peer-torch torch_gpu_ref.py
  webgpu_stage bench-model "$tsx bench/model.ts --webgpu --small --quick"
  peer_stage peer-hf hf_gpu_bench.py
  webgpu_stage quick-run "{ $tsx steps/run.ts --step 0 --quick --config '$tiny' --backend webgpu --out '$runs/quick-run' && $tsx steps/run.ts --step 2 --quick --config '$tiny' --backend webgpu --out '$runs/quick-run'; } 2>&1 | $stamp"
  webgpu_stage step1 "$tsx steps/run.ts --step 1 --config '$step1cfg' --backend webgpu --out '$runs/default-step1' 2>&1 | $stamp"
else
  webgpu_stage suites "REQUIRE_WEBGPU=1 $tsx scripts/test.ts test/engine/wgsl test/mamba/model-webgpu test/mamba/parity"
  webgpu_stage bench-webgpu "$tsx bench/webgpu.ts"
  peer_stage peer-torch torch_gpu_ref.py
  webgpu_stage bench-model "$tsx bench/model.ts --webgpu"
  peer_stage peer-hf hf_gpu_bench.py
  webgpu_stage quick-run "$tsx steps/run.ts --all --quick --backend webgpu --out '$runs/quick-run' 2>&1 | $stamp"
  webgpu_stage step1 "$tsx steps/run.ts --step 1 --backend webgpu --out '$runs/default-step1' 2>&1 | $stamp"
fi

# ---- the summary -----------------------------------------------------------------------------------
for s in "${STAGES[@]}"; do
  echo "=== $s ==="
  cat "$logs/$s.log"
done > "$outdir/gpu-check.log"
echo "gpu-check: $((SECONDS - start))s in all, $failures stage(s) failed or timed out; summary: $outdir/summary.tsv"
column -t -s $'\t' "$summary" 2>/dev/null || cat "$summary"
if [ "$pack" = 1 ]; then
  tar -czf "$outdir/gpu-check.tgz" -C "$outdir" --exclude='*.safetensors' --exclude='*.bin' logs runs && rm -rf "$logs" "$runs"
  echo "gpu-check: packed logs/ and runs/ into $outdir/gpu-check.tgz"
fi
[ "$failures" -eq 0 ]
