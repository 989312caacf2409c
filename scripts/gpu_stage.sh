#!/bin/bash
# Train one starter-model stage on a GPU machine that has JAX or PyTorch but no TensorFlow,
# through catseg's own CLI (catseg's PyDataset input path), and leave the results in $OUT.
#
#   FERAL=.../feral-cats/train SEED=.../seed-split/train OUT=/tmp/out bash scripts/gpu_stage.sh
#
# Env: PY (python, default python3), BACKENDS (tried in order, default "jax torch"),
# SIZE (default 256), BATCH (16), LRS (learning rates run side by side, default "0.0003"),
# BUDGET (seconds for the whole script, default 500), PROBE_SECONDS (default 120).
# Each phase prints its start time: a first try on an H100 (PyTorch 2.11) printed nothing
# after 90 s of its first training step, so the probe below times a few steps before the
# long run and moves on to the next backend if they do not finish.
set -u
START=$(date +%s)
stamp() { echo "[$(( $(date +%s) - START )) s] $*"; }
PY=${PY:-python3}; BACKENDS=${BACKENDS:-"jax torch"}; SIZE=${SIZE:-256}; BATCH=${BATCH:-16}
LRS=${LRS:-"0.0003"}; BUDGET=${BUDGET:-500}; PROBE_SECONDS=${PROBE_SECONDS:-120}
: "${FERAL:?set FERAL to feral-cats/train}" "${SEED:?set SEED to the seed-cats training split}"
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
exec > >(tee "$OUT/stage.log") 2>&1
export PYTHONUNBUFFERED=1
nvidia-smi -L 2>/dev/null

CHOSEN=""
for BACKEND in $BACKENDS; do
  stamp "probe $BACKEND"
  if KERAS_BACKEND=$BACKEND timeout "$PROBE_SECONDS" $PY - "$SIZE" "$BATCH" <<'PY'
import sys, time
started = time.time()
def say(text): print(f"  {time.time() - started:6.1f} s  {text}", flush=True)
import numpy as np, keras
say(f"keras {keras.__version__} on {keras.backend.backend()}")
from catseg.config import ModelConfig
from catseg.models import build_model, compile_model
size, batch = int(sys.argv[1]), int(sys.argv[2])
model = compile_model(build_model(ModelConfig(architecture="unet", image_size=size)), 3e-4)
say("model built")
photos = np.random.rand(batch, size, size, 3).astype("float32")
masks = (photos[..., :1] > 0.5).astype("float32")
for step in range(4):
    model.train_on_batch(photos, masks)
    say(f"train step {step}")
PY
  then CHOSEN=$BACKEND; break; fi
  stamp "probe $BACKEND failed or timed out"
done
[ -n "$CHOSEN" ] || { stamp "no backend trained a step in time"; exit 4; }
export KERAS_BACKEND=$CHOSEN

HOME0=/tmp/catseg-gpu-home
rm -rf "$HOME0" "$HOME0"-lr*
stamp "import"
CATSEG_HOME=$HOME0 $PY -m catseg import "$FERAL" 2>&1 | tail -n 1
CATSEG_HOME=$HOME0 $PY -m catseg import "$SEED" 2>&1 | tail -n 1
LEFT=$(( BUDGET - ($(date +%s) - START) - 45 ))
stamp "train on $CHOSEN, $LEFT s per learning rate: $LRS"
for LR in $LRS; do
  cp -r "$HOME0" "$HOME0-lr$LR"
  CATSEG_HOME=$HOME0-lr$LR $PY -m catseg train --from-model starter --size "$SIZE" --batch-size "$BATCH" \
    --learning-rate "$LR" --train-batch-norm --epochs 1000 --validation-fraction 0.1 --seed 42 --max-seconds "$LEFT" --json \
    > "$OUT/train-lr$LR.log" 2>&1 &
  PIDS="${PIDS:-} $!"
done
# Wait for the runs by PID: a bare `wait` would also wait for the tee above, which never ends.
for PID in $PIDS; do wait "$PID"; done
for LR in $LRS; do
  H=$HOME0-lr$LR; D=$OUT/lr$LR; mkdir -p "$D"
  tail -n 3 "$OUT/train-lr$LR.log"; mv "$OUT/train-lr$LR.log" "$D/train.log"
  cp "$H/catseg.sqlite3" "$D/"
  # Without the optimizer state the model file is a third of the size.
  CATSEG_HOME=$H $PY -c "
import shutil, sys
from catseg.models import load_model_version
model, _config, _card = load_model_version(sys.argv[1])
model.save(sys.argv[2] + '/model.keras', include_optimizer=False)
shutil.copy(sys.argv[1] + '/card.json', sys.argv[2] + '/card.json')
" "$H/models/run-1" "$D" 2>&1 | tail -n 2
done
stamp "done"
