#!/bin/bash
# The fine-tuning evidence run (README "Train on your own images"): the built-in default
# fine-tuned on photo scenes with one small target each (training photographs), evaluated
# before and after on the held-out PhotoScenesSMALL split (photographs it never saw).
#
#   benchmarks/finetune_small_objects.sh [WORK_DIR]      # about 30 minutes on a 2-core CPU
#
# Training runs in 10-minute chunks (--time-limit, then --resume-exp), at most 3, single
# threaded with one loader worker; /usr/bin/time reports each chunk's wall and CPU time.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-/tmp/finetune_small_objects}
export OMP_NUM_THREADS=1
DATA="$WORK/small_train"
EXPS="$WORK/exps"
TRAIN=(python train.py models/finetune.py --cpu --workers 1 --train-data "ImagesDir:$DATA"
       --val-fraction 0.03 --min-area 16 --epochs 6 --exps-path "$EXPS")

[ -d "$DATA/images" ] || python benchmarks/export_photo_scenes.py --scale small --num 1000 \
    --seed 777 --out "$DATA"
python evaluate_model.py --cpu --threads 1 --checkpoint weights/mst_tiny_photos_bigobjects.pth \
    --datasets PhotoScenesSMALL --logs-path "$WORK/eval"

/usr/bin/time -f "chunk: wall %e s, CPU user %U s + sys %S s" \
    "${TRAIN[@]}" --exp-name small --time-limit 10
EXP=$(ls -d "$EXPS"/finetune/*_small | tail -1)
for _ in 2 3; do
    [ -f "$EXP/weights_checksum.json" ] && break  # all epochs done
    /usr/bin/time -f "chunk: wall %e s, CPU user %U s + sys %S s" \
        "${TRAIN[@]}" --resume-exp "$(basename "$EXP" | cut -c1-3)" --time-limit 10
done

python evaluate_model.py --cpu --threads 1 --checkpoint "$EXP/checkpoints/best.pth" \
    --datasets PhotoScenesSMALL --logs-path "$WORK/eval"
