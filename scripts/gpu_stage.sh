#!/bin/bash
# Train starter-model stages on a GPU machine that has JAX or PyTorch but no TensorFlow,
# through catseg's own CLI (catseg's PyDataset input path), and leave the results in $OUT.
#
#   HOME_IN=.gpuhome OUT=/tmp/out bash scripts/gpu_stage.sh
#   FERAL=.../feral-cats/train SEED=.../seed-split/train OUT=/tmp/out bash scripts/gpu_stage.sh
#
# HOME_IN is a catseg data folder with the training photos already imported (made here with
# `CATSEG_HOME=.gpuhome python -m catseg import ...`, so the GPU machine spends no time on
# it); without it the script imports FERAL and SEED itself. Copy those folders into the
# checkout with `cp -rL`: bench/seed_split.py makes its split of links, and a link travels to
# the GPU machine as a link to nothing (a first run there imported 0 seed-cats photos).
# Env: PY (python, default python3), BACKENDS (tried in order, default "jax torch"),
# RUNS (runs side by side, "SIZE:LEARNING_RATE" each, default "256:0.0003"), BATCH (16),
# CLOSE_UP (share of close-up crops, 0.4), BUDGET (seconds for the whole script, 500),
# PROBE_SECONDS (default 120; 0 takes the first backend untried).
# Each run comes back as $OUT/run-SIZE-RATE.tar: the run's database, its best model without
# the optimizer state, its card and its log.
# Each phase prints its start time: a first try on an H100 (PyTorch 2.11) printed nothing
# after 90 s of its first training step, so the probe times a few steps before the
# long run and moves on to the next backend if they do not finish.
set -u
START=$(date +%s)
stamp() { echo "[$(( $(date +%s) - START )) s] $*"; }
PY=${PY:-python3}; BACKENDS=${BACKENDS:-"jax torch"}; RUNS=${RUNS:-"256:0.0003"}; BATCH=${BATCH:-16}
CLOSE_UP=${CLOSE_UP:-0.4}; BUDGET=${BUDGET:-500}; PROBE_SECONDS=${PROBE_SECONDS:-120}
if [ -z "${HOME_IN:-}" ]; then
  : "${FERAL:?set HOME_IN, or FERAL to feral-cats/train}" "${SEED:?set SEED to the seed-cats training split}"
fi
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
exec > >(tee "$OUT/stage.log") 2>&1
export PYTHONUNBUFFERED=1
nvidia-smi -L 2>/dev/null
RUN_COUNT=$(echo $RUNS | wc -w)
# JAX takes 75 % of the GPU's memory per process unless told otherwise; share it out.
export XLA_PYTHON_CLIENT_MEM_FRACTION=$(awk "BEGIN { printf \"%.2f\", 0.9 / $RUN_COUNT }")

CHOSEN=""
for BACKEND in $BACKENDS; do
  if [ "$PROBE_SECONDS" = 0 ]; then CHOSEN=$BACKEND; break; fi
  stamp "probe $BACKEND"
  if KERAS_BACKEND=$BACKEND timeout "$PROBE_SECONDS" $PY - 256 "$BATCH" <<'PY'
import sys, time
started = time.time()
def say(text): print(f"  {time.time() - started:6.1f} s  {text}", flush=True)
import numpy as np, keras
say(f"keras {keras.__version__} on {keras.backend.backend()}")
from catseg.model.config import ModelConfig
from catseg.model.networks import build_model, compile_model
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
rm -rf "$HOME0" "$HOME0"-run*
if [ -n "${HOME_IN:-}" ]; then
  cp -r "$HOME_IN" "$HOME0"
else
  stamp "import"
  CATSEG_HOME=$HOME0 $PY -m catseg import "$FERAL" 2>&1 | tail -n 1
  CATSEG_HOME=$HOME0 $PY -m catseg import "$SEED" 2>&1 | tail -n 1
fi
# A run overshoots --max-seconds by its last epoch and its save (about 30 s on an H100),
# and saving each run's model takes about 12 s more: a 40 s reserve cut off the third of
# three runs.
LEFT=$(( BUDGET - ($(date +%s) - START) - 60 - 15 * RUN_COUNT ))
stamp "train on $CHOSEN, $LEFT s per run: $RUNS"
PIDS=""
for RUN in $RUNS; do
  SIZE=${RUN%%:*}; LR=${RUN##*:}; H=$HOME0-run$SIZE-$LR
  cp -r "$HOME0" "$H"
  CATSEG_HOME=$H $PY -m catseg train --from-model starter --size "$SIZE" --batch-size "$BATCH" \
    --learning-rate "$LR" --train-batch-norm --close-up "$CLOSE_UP" --epochs 1000 \
    --validation-fraction 0.1 --seed 42 --max-seconds "$LEFT" --json > "$H/train.log" 2>&1 &
  PIDS="$PIDS $!"
done
# Wait for the runs by PID: a bare `wait` would also wait for the tee above, which never ends.
for PID in $PIDS; do wait "$PID"; done
for RUN in $RUNS; do
  SIZE=${RUN%%:*}; LR=${RUN##*:}; H=$HOME0-run$SIZE-$LR; D=$H-out
  stamp "run $RUN:"; tail -n 2 "$H/train.log"
  mkdir -p "$D" && cp "$H/catseg.sqlite3" "$H/train.log" "$D/"
  # Without the optimizer state the model file is a third of the size.
  CATSEG_HOME=$H $PY -c "
import shutil, sys
from catseg.model.versions import load_model_version
model, _config, _card = load_model_version(sys.argv[1])
model.save(sys.argv[2] + '/model.keras', include_optimizer=False)
shutil.copy(sys.argv[1] + '/card.json', sys.argv[2] + '/card.json')
" "$H/models/run-1" "$D" 2>&1 | tail -n 2
  tar -C "$D" -cf "$OUT/run-$SIZE-$LR.tar" .
done
stamp "done"
