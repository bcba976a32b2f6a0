#!/usr/bin/env bash
# Issue 10, item 4: the one prepared GPU run that trains a larger default at 448. On one GPU
# (16 CPU cores for the scene generation), about 8 minutes in all, nothing downloaded:
#   * trains the small MST at 448 (models/mst_small448_photos.py, width 192, depth 8) and its
#     plain-ViT control (models/plainvit_small448_photos.py) side by side from scratch on photo
#     scenes generated on that machine's CPUs (7 loader workers each), bf16 autocast, each
#     capped by --time-limit (default 5 min; the recipe's 1500 steps usually end first);
#   * exports both (weights only) and splits each file into 15 MB parts (the device tool brings
#     back files of at most 16 MiB): join with  cat DIR/NAME.pth.part* > weights/NAME.pth;
#   * evaluates both on the held-out photo splits (PhotoScenesSMALL/MEDIUM/LARGE, --target-iou
#     0.9, at most 150 s). GrabCut is measured back here on the CPU (it is not on that machine).
#
#   benchmarks/gpu_train_photos448.sh --fetch-wheels   # here, where pip works: the packages the
#                                                      # GPU image lacks, into .whl/ (7.5 MB)
#   benchmarks/gpu_train_photos448.sh --cpu            # dry run here: one step each, tiny eval
#   benchmarks/gpu_train_photos448.sh --out DIR [--minutes M]   # on the GPU machine
#
# With the device tool (after --fetch-wheels and `echo /.whl/ >> .git/info/exclude`):
#   run(command="benchmarks/gpu_train_photos448.sh --out $OUT", carry=[".whl", "datasets/photos"],
#       timeout_s=590)
# DIR holds 8 files (the device tool's limit): summary.txt (the steps' status, the training
# logs' last lines, each file's sha256 and the evaluation table), eval.txt, train_NAME.log and
# the weights' parts. Exit code: 0 all steps passed, 1 a step failed, 2 bad usage / no CUDA /
# missing packages or photos.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3}
MODE=cuda
OUT=""
MINUTES=5
WHEELS="albumentations==2.0.8 albucore==0.0.24 annotated-types==0.7.0 pydantic==2.13.4
pydantic_core==2.46.4 simsimd==6.5.16 stringzilla==5.3.2 typing-inspection==0.4.2"
MODELS="mst_small448_photos plainvit_small448_photos"

while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) MODE=cpu ;;
    --out) OUT="${2:?--out needs a folder}"; shift ;;
    --minutes) MINUTES="${2:?--minutes needs a number}"; shift ;;
    --fetch-wheels)
      # Python 3.12 x86-64 wheels for the GPU image (see /work/.library/device/README.md)
      # shellcheck disable=SC2086
      exec $PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform manylinux1_x86_64 -d .whl $WHEELS ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "error: unknown argument $1 (use --cpu, --out DIR, --minutes M, --fetch-wheels)" >&2
       exit 2 ;;
  esac
  shift
done
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/gpu_train448.XXXXXX")}
mkdir -p "$OUT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_train448_work.XXXXXX")
SUMMARY=$OUT/summary.txt
: > "$SUMMARY"
say() { echo "$*" | tee -a "$SUMMARY"; }

if [ -d .whl ] && ls .whl/*.whl > /dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$WORK/site" .whl/*.whl || { echo "error: installing .whl/ failed" >&2; exit 2; }
  export PYTHONPATH="$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if ! missing=$($PY -c 'import albumentations, tensorboard, isegm.engine.launch' 2>&1); then
  echo "error: $(echo "$missing" | tail -n 1); on the GPU machine run --fetch-wheels here first" \
       "and carry .whl" >&2
  exit 2
fi
PHOTOS=$($PY -c 'from isegm.utils.config import load_config; print(load_config()["PHOTOS_PATH"])')
if ! ls "$PHOTOS"/* > /dev/null 2>&1; then
  echo "error: no photographs at $PHOTOS (collect them: python -m isegm.data.photos collect;" \
       "carry datasets/photos to the GPU machine)" >&2
  exit 2
fi
if [ "$MODE" = cuda ] && ! $PY -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "error: CUDA is not available (use --cpu for a dry run on the CPU)" >&2
  exit 2
fi

say "gpu_train_photos448 mode=$MODE, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
$PY -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")' | tee -a "$SUMMARY"
if [ "$MODE" = cuda ]; then
  TRAIN_ARGS=(--gpus 0 --workers 7 --time-limit "$MINUTES")
  EVAL_ARGS=(--gpus 0 --batch-size 16)
else  # one step per model (--time-limit 0 stops after the first), two objects, two clicks
  TRAIN_ARGS=(--cpu --workers 0 --batch-size 2 --time-limit 0)
  EVAL_ARGS=(--cpu --limit 2 --n-clicks 2)
fi

FAILED=0
# -- 1 train both models side by side ------------------------------------------------------
start=$SECONDS
pids=()
for m in $MODELS; do
  $PY train.py "models/$m.py" "${TRAIN_ARGS[@]}" --amp --amp-dtype bf16 --exp-name gpu448 \
    --exps-path "$WORK/exps" > "$OUT/train_$m.log" 2>&1 &
  pids+=($!)
done
i=0
for m in $MODELS; do
  wait "${pids[$i]}"; rc=$?
  i=$((i + 1))
  if [ $rc -eq 0 ]; then say "PASS     train $m ($((SECONDS - start))s)"; else
    say "FAIL     train $m (exit $rc; see train_$m.log)"; FAILED=1; fi
  tr '\r' '\n' < "$OUT/train_$m.log" | grep -E "epoch [0-9]+ done|time limit|Traceback|Error" \
    | tail -n 4 | sed 's/^/    /' | tee -a "$SUMMARY"
done

# -- 2 export, split into parts that the device tool brings back -----------------------------
ckpts=()
for m in $MODELS; do
  last=$(ls "$WORK"/exps/"$m"/*/checkpoints/last.pth 2>/dev/null | head -n 1)
  if [ -z "$last" ]; then say "FAIL     export $m (no last.pth)"; FAILED=1; continue; fi
  if $PY -m isegm.model.checkpoint export "$last" "$WORK/$m.pth" > "$WORK/export.log" 2>&1; then
    split -b 15M -d "$WORK/$m.pth" "$OUT/$m.pth.part"
    say "PASS     export $m: $(stat -c %s "$WORK/$m.pth") bytes, sha256 $(sha256sum "$WORK/$m.pth" | cut -c1-64)"
    ckpts+=("$WORK/$m.pth")
  else
    say "FAIL     export $m: $(tail -n 1 "$WORK/export.log")"; FAILED=1
  fi
done

# -- 3 held-out photo splits ------------------------------------------------------------------
if [ ${#ckpts[@]} -gt 0 ]; then
  list=$(IFS=,; echo "${ckpts[*]}")
  timeout --kill-after=10 150 $PY evaluate_model.py "${EVAL_ARGS[@]}" --checkpoint "$list" \
    --datasets PhotoScenesSMALL,PhotoScenesMEDIUM,PhotoScenesLARGE --target-iou 0.9 \
    --logs-path "$WORK/evaluation_logs" > "$OUT/eval.txt" 2>&1
  rc=$?
  if [ $rc -eq 0 ]; then say "PASS     eval"; grep '^|' "$OUT/eval.txt" | tee -a "$SUMMARY"; else
    say "FAIL     eval (exit $rc; see eval.txt)"; FAILED=1; fi
fi
say "total $((SECONDS))s"
rm -rf "$WORK"
exit $FAILED
