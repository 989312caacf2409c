"""Speed of a fine-tune's training step, option by option, side by side. Prints one JSON object.

Each variant fine-tunes the starter model (U^2-Net-p) on the seed-cats photos for a few
steps in its own process, as catseg's training does (its frozen batch norm, loss, metric and
weight average), and reports photos per second over the steps after the first two (which
trace the step), and the processor seconds a photo took (all threads: steadier than the
wall clock when other work shares the cores, though spinning threads count too). The options:

  size          the fine-tune's input size (the saved model still predicts at the card's size)
  frozen        U^2-Net-p encoder stages kept fixed (catseg.train.fitting.freeze_encoder), 0 to 6
  outputs       "all" (the fused map and six side maps: deep supervision) or "fused"
  feed          "pipeline" (catseg's tf.data pipeline with augmentation) or "memory"
                (the same first batch again and again: the ceiling for any pipeline)
  inter_op      TensorFlow's inter-op threads (0: its default)

"recipe" is the fine-tune default (config.FINE_TUNE_TRAINING) on the starter: "recipe" alone,
or followed by options that change it ("recipe,feed=memory").

To emulate a laptop processor on a machine with AVX-512, run it with ONEDNN_MAX_CPU_ISA=AVX2
(the variants inherit the environment). Every variant computes in float32.

    ONEDNN_MAX_CPU_ISA=AVX2 .venv/bin/python bench/finetune_step_speed.py --batch 4 --steps 4
    ONEDNN_MAX_CPU_ISA=AVX2 .venv/bin/python bench/finetune_step_speed.py --variant recipe --variant size=256
    .venv/bin/python bench/finetune_step_speed.py --variant size=192,frozen=4 --variant size=256
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from _common import SEED_CATS, seed_split_pairs

DEFAULT_VARIANTS = (
    "recipe",
    "size=256",
    "size=256,feed=memory",
    "size=256,outputs=fused",
    "size=256,inter_op=1",
    "size=256,frozen=4",
    "size=256,frozen=6",
    "size=224",
    "size=192",
    "size=224,frozen=4",
    "size=192,frozen=4",
)
OPTION_DEFAULTS = {"size": 256, "frozen": 0, "outputs": "all", "feed": "pipeline", "inter_op": 0}


def recipe_options() -> dict:
    """The options of the fine-tune default (config.FINE_TUNE_TRAINING) for the starter model."""
    from catseg.model.config import FINE_TUNE_TRAINING, ModelConfig, training_image_size
    from catseg.model.versions import read_card
    from catseg.model.registry import starter_model_directory

    starter = ModelConfig.from_dict(read_card(starter_model_directory())["model_config"])
    return dict(OPTION_DEFAULTS, size=training_image_size(starter, FINE_TUNE_TRAINING, fine_tune=True),
                frozen=FINE_TUNE_TRAINING.frozen_encoder_stages)


def parse_variant(text: str) -> dict:
    """"size=192,frozen=4" -> the full set of options, the others at their defaults ("recipe": the
    fine-tune default's, which later options change)."""
    options = dict(OPTION_DEFAULTS)
    if text.startswith("recipe"):
        options, text = recipe_options(), text[len("recipe"):]
    for part in filter(None, text.split(",")):
        name, _, value = part.partition("=")
        if name not in OPTION_DEFAULTS:
            raise ValueError(f"Unknown option {name!r} in {text!r}; options are {', '.join(OPTION_DEFAULTS)}.")
        options[name] = type(OPTION_DEFAULTS[name])(value)
    return options


def photos_per_second(options: dict, batch: int, steps: int) -> dict:
    """Time `steps` fine-tune steps with `options` in this process."""
    import tensorflow as tf

    if options["inter_op"]:
        tf.config.threading.set_inter_op_parallelism_threads(options["inter_op"])
    import keras

    from catseg.model.config import FINE_TUNE_TRAINING
    from catseg.model.networks import at_input_size, compile_model, in_precision
    from catseg.model.versions import load_model_version
    from catseg.train.pipeline import load_examples, make_dataset
    from catseg.model.registry import starter_model_directory
    from catseg.train.fitting import _freeze_batch_norm, freeze_encoder
    from catseg.model.u2netp import with_side_outputs

    keras.utils.set_random_seed(0)
    model, config, _card = load_model_version(starter_model_directory())
    model = in_precision(model, "float32")
    _freeze_batch_norm(model)
    freeze_encoder(model, options["frozen"])
    fit_model = with_side_outputs(model) if options["outputs"] == "all" else model
    if options["size"] != config.image_size:
        fit_model = at_input_size(fit_model, options["size"])  # the same layers and weights on smaller photos
    # The recipe's weight average (its momentum, set per run from its length, costs the same at any value).
    compile_model(fit_model, FINE_TUNE_TRAINING.learning_rate, average_momentum=0.99)

    train_pairs, _ = seed_split_pairs(SEED_CATS)
    images, masks = load_examples(train_pairs, options["size"])
    dataset = make_dataset(images, masks, batch, training=True, augment=True, seed=0,
                           close_up_probability=FINE_TUNE_TRAINING.close_up_probability).repeat()
    if options["feed"] == "memory":
        dataset = dataset.take(1).cache().repeat()

    ends: list[float] = []
    processor_ends: list[float] = []

    class StepClock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch_index, logs=None):
            ends.append(time.perf_counter())
            processor_ends.append(time.process_time())

    warm_up_steps = 2  # the first traces the step; the second can still allocate
    fit_model.fit(dataset, steps_per_epoch=warm_up_steps + steps, epochs=1, verbose=0, callbacks=[StepClock()])
    seconds = ends[-1] - ends[warm_up_steps - 1]
    step_seconds = [round(later - earlier, 2) for earlier, later in zip(ends[warm_up_steps - 1:], ends[warm_up_steps:])]
    trainable = sum(int(keras.ops.size(weight)) for weight in fit_model.trainable_weights)
    # Processor seconds (all threads) per photo: steadier than the wall clock while other work shares the cores.
    processor_seconds = processor_ends[-1] - processor_ends[warm_up_steps - 1]
    return {"photos_per_second": round(steps * batch / seconds, 3), "step_seconds": step_seconds,
            "processor_seconds_per_photo": round(processor_seconds / (steps * batch), 3),
            "trainable_weights": trainable}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", action="append", metavar="OPTION=VALUE,...",
                        help=f"a variant to time (may be repeated; default: {len(DEFAULT_VARIANTS)} variants)")
    parser.add_argument("--batch", type=int, default=4, help="photos per step (default 4, the Train page's)")
    parser.add_argument("--steps", type=int, default=4, help="timed steps per variant (default 4)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a variant, timed in this process
    arguments = parser.parse_args()
    if arguments.one:
        print(json.dumps(photos_per_second(parse_variant(arguments.one), arguments.batch, arguments.steps)))
        return
    variants = arguments.variant or list(DEFAULT_VARIANTS)
    for text in variants:
        try:
            parse_variant(text)
        except ValueError as error:
            parser.error(str(error))
    results = {}
    for text in variants:
        # Its own process: thread settings only take before TensorFlow starts, and no variant
        # inherits another's memory or traced functions.
        finished = subprocess.run(
            [sys.executable, __file__, "--one", text, "--batch", str(arguments.batch), "--steps", str(arguments.steps)],
            capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
        if finished.returncode:
            results[text] = {"error": finished.stderr.strip().splitlines()[-1:]}
        else:
            results[text] = json.loads(finished.stdout.strip().splitlines()[-1])
    print(json.dumps({
        "variants": results, "batch_size": arguments.batch, "steps": arguments.steps, "precision": "float32",
        "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"), "cpu_count": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
