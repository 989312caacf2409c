"""Training speed of the tutorial U-Net from in-memory tensors alone (no input pipeline). Prints JSON.

Shows how fast this machine runs the model step itself, the ceiling for any input pipeline.

    .venv/bin/python bench/model_step_speed.py [--size 256] [--batch 4] [--steps 20]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20)
    arguments = parser.parse_args()
    import tensorflow as tf

    from catseg.models import build_tutorial_unet

    generator = np.random.default_rng(0)
    photos = generator.random((32, arguments.size, arguments.size, 3), dtype=np.float32)
    masks = (generator.random((32, arguments.size, arguments.size, 1)) > 0.5).astype(np.float32)
    results = {}
    for jit in (False, True):
        model = build_tutorial_unet(arguments.size)
        model.compile(optimizer="adam", loss="binary_crossentropy", jit_compile=jit)
        batches = tf.data.Dataset.from_tensor_slices((photos, masks)).batch(arguments.batch).repeat()
        model.fit(batches, steps_per_epoch=5, epochs=1, verbose=0)  # warm-up and tracing
        started = time.perf_counter()
        model.fit(batches, steps_per_epoch=arguments.steps, epochs=1, verbose=0)
        results["xla" if jit else "plain"] = round(arguments.steps * arguments.batch / (time.perf_counter() - started), 2)
    print(json.dumps({"images_per_second": results, "image_size": arguments.size, "batch_size": arguments.batch,
                      "steps": arguments.steps}))


if __name__ == "__main__":
    main()
