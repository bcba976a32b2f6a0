#!/bin/bash
# The fine-tuning evidence run (README "Train on your own images"): the built-in default,
# evaluated on held-out images of a domain it has never seen (synthetic microscopy-like cells,
# benchmarks/make_domain.py), fine-tuned on 300 training images of that domain with the
# defaults of models/finetune.py, and evaluated again on the same held-out images.
#
#   benchmarks/finetune_cells.sh [WORK_DIR]      # about 25 CPU-minutes in all, 11 of them training
#
# Settings are chosen on the validation split (--val-fraction) only; the held-out folder is
# read by the two evaluations and nothing else. /usr/bin/time reports the training's wall and
# CPU time (user + sys, the loader worker included).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-/tmp/finetune_cells}
export OMP_NUM_THREADS=1
DATA="$WORK/cells"
EXPS="$WORK/exps"
EVAL=(python evaluate_model.py --cpu --threads 1 --target-iou 0.9
      --datasets "ImagesDir:$DATA/heldout" --logs-path "$WORK/eval")

[ -d "$DATA/heldout/images" ] || python benchmarks/make_domain.py cells --out "$DATA" \
    --train 300 --heldout 20 --seed 0
"${EVAL[@]}" --checkpoint weights/mst_tiny_photos_bigobjects.pth

/usr/bin/time -f "training: wall %e s, CPU user %U s + sys %S s" \
    python train.py models/finetune.py --cpu --workers 1 \
    --weights weights/mst_tiny_photos_bigobjects.pth --train-data "ImagesDir:$DATA/train" \
    --val-fraction 0.1 --val-objects 30 --exps-path "$EXPS" --exp-name cells
EXP=$(ls -d "$EXPS"/finetune/*_cells | tail -1)
for CKPT in best last; do
    "${EVAL[@]}" --checkpoint "$EXP/checkpoints/$CKPT.pth"
done
