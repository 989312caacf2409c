"""Training speed of a network's step from in-memory tensors alone (no input pipeline). Prints JSON.

Shows how fast this machine runs the training step itself (catseg's loss, metric and, for
U^2-Net-p, all seven outputs), the ceiling for any input pipeline, in float32 and in
Keras' mixed_bfloat16 policy. Run it on a quiet machine.

    .venv/bin/python bench/model_step_speed.py --model u2netp --size 256 --batch 8
    .venv/bin/python bench/model_step_speed.py --model tutorial --size 256 --batch 8
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import _common  # noqa: F401  (puts the repository on sys.path)

PRECISIONS = ("float32", "mixed_bfloat16")


def photos_per_second(architecture: str, size: int, batch: int, steps: int, precision: str, jit: bool) -> float:
    import keras
    import tensorflow as tf

    from catseg.model.config import ModelConfig
    from catseg.model.networks import build_model, compile_model
    from catseg.model.u2netp import with_side_outputs

    keras.mixed_precision.set_global_policy(precision)
    try:
        model = with_side_outputs(build_model(ModelConfig(architecture=architecture, image_size=size)))
        compile_model(model, 1e-4, jit_compile=jit)
        generator = np.random.default_rng(0)
        photos = generator.random((2 * batch, size, size, 3), dtype=np.float32)
        masks = (generator.random((2 * batch, size, size, 1)) > 0.5).astype(np.float32)
        batches = tf.data.Dataset.from_tensor_slices((photos, masks)).batch(batch).repeat()
        model.fit(batches, steps_per_epoch=3, epochs=1, verbose=0)  # warm-up and tracing
        started = time.perf_counter()
        model.fit(batches, steps_per_epoch=steps, epochs=1, verbose=0)
        return round(steps * batch / (time.perf_counter() - started), 2)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=("u2netp", "tutorial", "unet"), default="u2netp")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--precision", choices=PRECISIONS, action="append",
                        help="one or both of float32 and mixed_bfloat16 (default: both)")
    parser.add_argument("--xla", action="store_true", help="also time XLA-compiled steps")
    arguments = parser.parse_args()
    results = {}
    for precision in arguments.precision or PRECISIONS:
        for jit in (False, True) if arguments.xla else (False,):
            key = precision + ("+xla" if jit else "")
            results[key] = photos_per_second(arguments.model, arguments.size, arguments.batch,
                                             arguments.steps, precision, jit)
    print(json.dumps({"training_photos_per_second": results, "model": arguments.model,
                      "image_size": arguments.size, "batch_size": arguments.batch, "steps": arguments.steps}))


if __name__ == "__main__":
    main()
