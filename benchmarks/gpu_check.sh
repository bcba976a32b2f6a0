#!/usr/bin/env bash
# GPU check (issue 13): one prepared run on a machine with CUDA, under 8 minutes on one GPU,
# nothing downloaded. It needs the ../shared fixtures (parity/, datasets/GrabCut; or
# ISEGM_SHARED=DIR); a step whose inputs are missing is reported as SKIPPED.
#
#   benchmarks/gpu_check.sh                # CUDA (GPU 0)
#   benchmarks/gpu_check.sh --cpu          # the same steps, smaller, on the CPU (a dry run)
#   benchmarks/gpu_check.sh --out DIR      # where the logs go (default: a new temp folder)
#
# Steps (each under its own time limit, each logged to DIR/<n>_<step>.log; DIR/summary.txt
# lists PASS/FAIL/SKIPPED and seconds per step, and the figures to copy into BENCHMARKS.md):
#   1 model tests:   tests/model with torch's default device set to CUDA (TF32 off)
#   2 logits:        ViT-B 448 models (vitb_*_config.pt + fill.py weights) on the parity inputs,
#                    CUDA vs CPU in float64 and float32 (TF32 off), bf16 autocast drift
#   3 bench_model:   MST main ViT-B 448 forward / per-click at batch 1, 8, 32 in fp32 and bf16
#   4 bench_eval:    evaluation loop on GrabCut, lockstep batch 1, 8, 32 in fp32 and bf16
#                    (clicks/s, speed-up, bf16 NoC drift)
#   5 train:         two training steps of the MST main recipe (ViT-B 448) with --amp on
#                    synthetic scenes through dis_train.py
# Exit code: 0 every step passed or was skipped, 1 a step failed, 2 bad usage / no CUDA.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

MODE=cuda
OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) MODE=cpu ;;
    --out) OUT="${2:?--out needs a folder}"; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "error: unknown argument $1 (use --cpu, --out DIR)" >&2; exit 2 ;;
  esac
  shift
done
PY=${PYTHON:-python}
SHARED=${ISEGM_SHARED:-$ROOT/../shared}
export ISEGM_SHARED=$SHARED
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")}
mkdir -p "$OUT"
SUMMARY=$OUT/summary.txt
: > "$SUMMARY"

if [ "$MODE" = cuda ] && ! $PY -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "error: CUDA is not available (use --cpu for a dry run on the CPU)" >&2
  exit 2
fi

if [ "$MODE" = cuda ]; then
  THREADS=8; DEV=cuda
else
  THREADS=$($PY -c 'import os; print(max(1, min(4, (os.cpu_count() or 2) // 2)))'); DEV=cpu
fi

FAILED=0
N=0
# step NAME SECONDS COMMAND...: runs one step with a time limit, logs it, records its status
step() {
  local name=$1 limit=$2; shift 2
  N=$((N + 1))
  local log="$OUT/${N}_${name}.log" start=$SECONDS rc
  echo "== step $N: $name (limit ${limit}s) =="
  timeout --kill-after=10 "$limit" "$@" > "$log" 2>&1
  rc=$?
  local took=$((SECONDS - start))
  if [ $rc -eq 0 ]; then
    echo "PASS     $name (${took}s)" | tee -a "$SUMMARY"
  elif [ $rc -eq 77 ]; then
    echo "SKIPPED  $name: $(tail -n 1 "$log")" | tee -a "$SUMMARY"
  else
    [ $rc -eq 124 ] && echo "(time limit of ${limit}s reached)" >> "$log"
    echo "FAIL     $name (exit $rc, ${took}s; see $log)" | tee -a "$SUMMARY"
    tail -n 15 "$log" | sed 's/^/    /'
    FAILED=1
  fi
}

need() {  # need PATH...: exit 77 (skipped) naming the first missing input
  for p in "$@"; do
    [ -e "$p" ] || { echo "missing $p (set ISEGM_SHARED)"; exit 77; }
  done
}
export -f need

{
  echo "gpu_check mode=$MODE, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  $PY -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda,
    torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")'
  nproc | sed 's/^/cpus /'
} | tee -a "$SUMMARY"

# -- 1 model tests -------------------------------------------------------------------------
PLUGIN_DIR=$OUT/plugin
mkdir -p "$PLUGIN_DIR"
cat > "$PLUGIN_DIR/gpu_check_device.py" <<'EOF'
"""pytest plugin of gpu_check.sh: tensors and modules made without a device go to CUDA."""
import torch


def pytest_configure(config):
    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.set_default_device("cuda")
EOF
if [ "$MODE" = cuda ]; then
  step model_tests 150 env PYTHONPATH="$PLUGIN_DIR${PYTHONPATH:+:$PYTHONPATH}" \
    $PY -m pytest -q -p gpu_check_device tests/model -m "not slow"
else
  step model_tests 150 env PYTHONPATH="$PLUGIN_DIR${PYTHONPATH:+:$PYTHONPATH}" \
    $PY -m pytest -q -p gpu_check_device tests/model/test_models.py -k encode_once
fi

# -- 2 CUDA vs CPU logits of the ViT-B 448 models on the parity inputs ----------------------
cat > "$OUT/logits_check.py" <<'EOF'
import sys
import time

import torch

from isegm.model.checkpoint import model_from_reference, read_checkpoint

mode, parity = sys.argv[1], sys.argv[2]
sys.path.insert(0, parity)
from fill import fill_state_dict, read_keys_tsv  # noqa: E402

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
inputs = torch.load(f'{parity}/inputs.pt', weights_only=True)
branches = ['main', 'mst-448', 'simpleclick'] if mode == 'cuda' else ['main']
samples = 2 if mode == 'cuda' else 1
ok = True
for branch in branches:
    t0 = time.perf_counter()
    config = read_checkpoint(f'{parity}/vitb_{branch}_config.pt')
    sd = fill_state_dict(read_keys_tsv(f'{parity}/vitb_{branch}_keys.tsv'))
    model = model_from_reference({'state_dict': sd, 'config': config}, f'vitb_{branch}').eval()
    u8, pts = inputs['image_u8'][:samples], inputs['points'][:samples]

    def run(dtype, device, autocast=None):
        m = model.to(device=device, dtype=dtype)
        with torch.no_grad(), torch.autocast(device, dtype=autocast or torch.bfloat16,
                                             enabled=autocast is not None):
            out = m(u8.to(device=device, dtype=dtype) / 255, pts.to(device=device, dtype=dtype))
        return out['instances'].double().cpu()

    # float64 runs first: run() converts the model in place, float32 would lose digits
    cpu64 = run(torch.float64, 'cpu')
    scale = cpu64.abs().max().item()
    if mode == 'cuda':
        other64, other32 = run(torch.float64, 'cuda'), run(torch.float32, 'cuda')
        bf16 = run(torch.float32, 'cuda', torch.bfloat16)
        where = 'cuda'
    else:  # dry run: the CPU's float32 against its float64
        other64, other32, bf16 = cpu64, run(torch.float32, 'cpu'), None
        where = 'cpu'
    d64 = (other64 - cpu64).abs().max().item()
    d32 = (other32 - cpu64).abs().max().item()
    good = d64 <= 1e-10 and d32 <= 5e-6  # parity README: vitb float32 vs float64 ~2.2e-7
    ok &= good
    line = (f'vitb {branch}: max|logit| {scale:.3g}; {where} f64 vs cpu f64 {d64:.2e}, '
            f'{where} f32 vs cpu f64 {d32:.2e}')
    if bf16 is not None:
        line += f', cuda bf16 autocast vs cpu f64 {(bf16 - cpu64).abs().max().item():.2e}'
    print(line + f' ({time.perf_counter() - t0:.0f}s) ' + ('ok' if good else 'TOO FAR'),
          flush=True)
sys.exit(0 if ok else 1)
EOF
step logits 300 bash -c "need '$SHARED/parity/inputs.pt' '$SHARED/parity/fill.py' && \
  $PY '$OUT/logits_check.py' '$MODE' '$SHARED/parity'"

# -- 3 bench_model.py ---------------------------------------------------------------------
if [ "$MODE" = cuda ]; then
  step bench_model 150 $PY benchmarks/bench_model.py --device cuda --sizes 448 \
    --batch 1,8,32 --precision fp32,bf16 --models mst_main_vit_base_448 --no-train \
    --no-write --threads "$THREADS" --warmup 3 --reps 10
else
  step bench_model 400 $PY benchmarks/bench_model.py --device cpu --sizes 224 --batch 1,2 \
    --precision fp32 --models mst_tiny_224 --no-train --no-write --threads "$THREADS" \
    --warmup 0 --reps 1
fi

# -- 4 bench_eval.py ----------------------------------------------------------------------
if [ "$MODE" = cuda ]; then
  step bench_eval 180 bash -c "need '$SHARED/datasets/GrabCut' && $PY benchmarks/bench_eval.py \
    --device cuda --models vitb --images 40 --clicks 5 --batch-size 1,8,32 \
    --precision fp32,bf16 --threads $THREADS --grabcut '$SHARED/datasets/GrabCut'"
else
  step bench_eval 240 bash -c "need '$SHARED/datasets/GrabCut' && $PY benchmarks/bench_eval.py \
    --device cpu --models tiny --images 2 --clicks 1 --batch-size 1,2 --precision fp32 \
    --threads $THREADS --grabcut '$SHARED/datasets/GrabCut'"
fi

# -- 5 two training steps of the MST main recipe with --amp on synthetic data ---------------
TRAIN_DIR=$OUT/train
mkdir -p "$TRAIN_DIR/exps"
cat > "$TRAIN_DIR/mst_main_synthetic.py" <<'EOF'
"""The MST ``main`` recipe (models/adaptivevit_base448_cclvs.py) on synthetic scenes, random
init (no pretrained file on a check machine): only that the step runs with AMP."""
from isegm.engine.recipes import cclvs_448_recipe
from isegm.engine.project_recipes import synthetic_datasets

MODEL_NAME = "gpu_check_mst_main"
_recipe = cclvs_448_recipe("mst_main_vit_base_448")
_recipe.init = None
_recipe.datasets = lambda cfg, crop: synthetic_datasets(cfg, crop, num_train=64, num_val=4)
init_model, get_datasets, get_train_config = _recipe.hooks()
EOF
cat > "$TRAIN_DIR/config.yml" <<EOF
EXPS_PATH: "$TRAIN_DIR/exps"
EOF
if [ "$MODE" = cuda ]; then
  step train 180 $PY dis_train.py "$TRAIN_DIR/mst_main_synthetic.py" --gpus 0 --amp \
    --batch-size 8 --epochs 1 --max-steps-per-epoch 2 --workers 2 \
    --config-path "$TRAIN_DIR/config.yml" --exps-path "$TRAIN_DIR/exps"
else
  step train 600 $PY dis_train.py "$TRAIN_DIR/mst_main_synthetic.py" --cpu --nproc 1 --amp \
    --img_size 224 --batch-size 1 --epochs 1 --max-steps-per-epoch 2 --workers 0 \
    --config-path "$TRAIN_DIR/config.yml" --exps-path "$TRAIN_DIR/exps"
fi

# -- figures ----------------------------------------------------------------------------
{
  echo
  echo "figures:"
  grep -h -E "^vitb |batch +[0-9]+:|^\| |^drift |samples/s|step time|epoch .* done" \
    "$OUT"/*_logits.log "$OUT"/*_bench_model.log "$OUT"/*_bench_eval.log "$OUT"/*_train.log \
    2>/dev/null
} >> "$SUMMARY"
echo "summary: $SUMMARY"
exit $FAILED
