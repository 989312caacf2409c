"""`python -m catseg train` (foreground) and `train-worker` (the page's background process)."""

from __future__ import annotations

import argparse
import json
import signal
import sys


def command_train(arguments: argparse.Namespace) -> int:
    import dataclasses

    import storage
    from catseg.model.config import FINE_TUNE_TRAINING, ModelConfig, TrainConfig
    from catseg.train.run_control import learnt_by, plan_run, run_split
    from catseg.train.worker import execute_run, local_stop_request
    from storage import runs

    model_overrides = {"architecture": arguments.arch, "image_size": arguments.size, "pretrained": arguments.pretrained}
    model_config = ModelConfig(**{k: v for k, v in model_overrides.items() if v is not None})
    # Starting from a model, the fine-tune recipe unless asked (see FINE_TUNE_LEARNING_RATE).
    defaults = TrainConfig() if arguments.from_model is None else FINE_TUNE_TRAINING
    train_overrides = {"epochs": arguments.epochs, "batch_size": arguments.batch_size,
                       "learning_rate": arguments.learning_rate, "average_momentum": arguments.average_momentum,
                       "max_seconds": arguments.max_seconds,
                       "validation_fraction": arguments.validation_fraction, "seed": arguments.seed,
                       "close_up_probability": arguments.close_up, "precision": arguments.precision}
    train_config = dataclasses.replace(defaults, **{k: v for k, v in train_overrides.items() if v is not None})
    if arguments.average_momentum is not None:
        # A fixed pace asked for replaces the recipe's pace set from the run's length.
        train_config = dataclasses.replace(train_config, average_span=0.0)
    if arguments.no_augment:
        train_config = dataclasses.replace(train_config, augment=False)
    if arguments.train_batch_norm:
        train_config = dataclasses.replace(train_config, freeze_batch_norm=False)
    if arguments.no_time_limit:
        train_config = dataclasses.replace(train_config, max_seconds=None)
    fine_tune_size = arguments.size if arguments.from_model is not None else None
    from catseg.data.team import command_line_user

    run_id = plan_run(model_config, train_config, arguments.from_model, fine_tune_size, arguments.repeat or (),
                      created_by=command_line_user())
    with storage.begin() as session:
        planned_run = runs.get_run(session, run_id)
        planned = ModelConfig.from_dict(planned_run.model_config)
        from_starter = planned_run.initial_model == "starter"
        split = run_split(session, run_id, learnt_by(arguments.from_model))
    if split.hold_out_flatters:
        split_words = (f"on {split.teach} photos, {split.held_out} held out to pick the epoch; the starting model "
                       "learnt all of them, so the held-out ones will flatter it")
    elif split.learnt:
        split_words = (f"on {split.teach} photos ({split.learnt} of them learnt by the starting model, "
                       f"so never held out), {split.held_out} held out to pick the epoch")
    else:
        split_words = f"on {split.teach} photos, {split.held_out} held out to pick the epoch"
    print(f"Training run #{run_id}: {planned.architecture} at {planned.image_size} px {split_words}. "
          "Ctrl+C stops it and keeps the best epoch so far.", file=sys.stderr)
    if train_config.max_seconds is not None and split.teach:
        print(budget_words(planned, train_config, planned_run.initial_model is not None, split.teach, split.held_out),
              file=sys.stderr)
    def stop_gently(signal_number, frame) -> None:
        # First Ctrl+C: finish the batch, keep the best epoch. A second one interrupts at once.
        print("\nStopping after this batch; the best epoch so far is kept (Ctrl+C again to abort).", file=sys.stderr)
        local_stop_request.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def announce(epoch: int, logs: dict, seconds: float) -> None:
        if epoch == 0:
            print(f"starting model: validation IoU {logs['val_iou']:.3f} (the score to beat)", file=sys.stderr)
            return
        print(f"epoch {epoch}: loss {logs.get('loss', float('nan')):.3f}, IoU {logs.get('iou', float('nan')):.3f}, "
              f"validation IoU {logs.get('val_iou', float('nan')):.3f} ({seconds:.0f} s)", file=sys.stderr)

    signal.signal(signal.SIGINT, stop_gently)
    summary = execute_run(run_id, announce)
    if arguments.json:
        print(json.dumps(summary))
    elif summary["status"] == "failed":
        print(f"Run #{run_id} failed. {summary.get('error', '')}", file=sys.stderr)
    else:
        print(f"Run #{run_id} {summary['status']}: best validation IoU {summary['best_val_iou']:.3f} at epoch "
              f"{summary['best_epoch']} of {summary['epochs']} in {summary['seconds']:.0f} s"
              + (f" (starting model: {summary['starting_val_iou']:.3f})" if summary["starting_val_iou"] is not None else "")
              + f"; model version #{summary['model_id']}.")
        if summary["starting_val_iou"] is not None and summary["best_val_iou"] < summary["starting_val_iou"]:
            default_note = ("commands without --model keep using the starter until a version beats it"
                            if from_starter else
                            "it may serve you better (unless it was trained on those photos)")
            print(f"Warning: no epoch beat the starting model on the validation photos; {default_note}. More labelled "
                  "photos or a lower learning rate may help.", file=sys.stderr)
    return 1 if summary["status"] == "failed" else 0


def budget_words(model_config, train_config, fine_tune: bool, teach: int, held_out: int) -> str:
    """What the time budget buys on this machine, from the step times its last such run measured."""
    from catseg.train.budget import USEFUL_PASSES, budget_estimate, recorded_step_times, run_network_key

    times = recorded_step_times(run_network_key(model_config, train_config, fine_tune))
    budget = f"{train_config.max_seconds / 60:.3g} minutes"
    if times is None:
        return (f"How far {budget} go on this machine is known once a run of {model_config.architecture} at "
                f"{model_config.image_size} px has finished here: every run measures its steps.")
    estimate = budget_estimate(times, teach, held_out, train_config.max_seconds, train_config.epochs,
                               train_config.batch_size)
    passes = "less than one pass" if estimate.passes == 0 else (
        f"about {estimate.passes} pass{'' if estimate.passes == 1 else 'es'}")
    words = f"On this machine {budget} buy {passes} over the {teach} training photos."
    if estimate.too_short:
        words += (f" A run learns little in fewer than {USEFUL_PASSES}: give it about {estimate.useful_minutes} "
                  f"minutes (--max-seconds {estimate.useful_minutes * 60}).")
    return words


def command_train_worker(arguments: argparse.Namespace) -> int:
    from catseg.train.worker import execute_run

    summary = execute_run(arguments.run_id)
    print(json.dumps(summary))
    return 0


def _repeat_rule(text: str) -> tuple[str, int]:
    pattern, separator, times = text.rpartition("=")
    if not separator or not pattern or not times.isdigit() or not 1 <= int(times) <= 100:
        raise argparse.ArgumentTypeError(f"write PATTERN=TIMES with TIMES from 1 to 100, e.g. 'cat.*=4', not {text!r}")
    return pattern, int(times)


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add `train` and the hidden `train-worker` to the CLI's sub-commands."""
    from catseg.model.config import ARCHITECTURES, FINE_TUNE_TRAINING, PRECISIONS, TrainConfig

    def plain(rate: float) -> str:
        return f"{rate:f}".rstrip("0")  # plain decimals, as the README and the Train page write rates

    training = commands.add_parser("train", help="train a model on the labelled photos (in the foreground)")
    training.add_argument("--arch", choices=ARCHITECTURES, help="network (default: unet)")
    training.add_argument("--size", type=int, help="model input size in pixels, a multiple of 32 (with --from-model: fine-tune at this size)")
    training.add_argument("--epochs", type=int)
    training.add_argument("--batch-size", type=int)
    training.add_argument("--learning-rate", type=float,
                          help=f"peak Adam learning rate (default {plain(TrainConfig().learning_rate)} from scratch, "
                               f"{plain(FINE_TUNE_TRAINING.learning_rate)} with --from-model)")
    training.add_argument("--average-momentum", type=float, metavar="MOMENTUM",
                          help="score and keep a moving average of the weights with this momentum per step, "
                               "0 for none (default: none from scratch; with --from-model an average spanning "
                               f"{FINE_TUNE_TRAINING.average_span:g} of the run's steps, its momentum set from the "
                               "steps the time budget buys)")
    training.add_argument("--max-seconds", type=float, help="wall-time budget (default from the recipe)")
    training.add_argument("--validation-fraction", type=float, help="share of photos held out (default 0.25)")
    training.add_argument("--seed", type=int, help="fixes the split, shuffling and augmentation (default 42)")
    training.add_argument("--no-time-limit", action="store_true", help="train for all epochs")
    training.add_argument("--no-augment", action="store_true", help="no random flips/zoom/rotation/colour jitter")
    training.add_argument("--close-up", type=float, metavar="SHARE",
                          help="share of augmented photos zoomed onto the cat until it fills the frame, 0 to 1 "
                               f"(default {TrainConfig().close_up_probability:g} from scratch, "
                               f"{FINE_TUNE_TRAINING.close_up_probability:g} with --from-model)")
    training.add_argument("--train-batch-norm", action="store_true",
                          help="with --from-model: also update batch-norm statistics (kept fixed by default; "
                               "worth it with hundreds of photos)")
    training.add_argument("--pretrained", action="store_true", default=None,
                          help="ImageNet weights for the mobilenet_unet encoder (needs internet once)")
    training.add_argument("--precision", choices=PRECISIONS,
                          help="arithmetic: mixed_bfloat16 is faster where the processor has bfloat16 instructions "
                               "and slow elsewhere (default auto: mixed_bfloat16 there, float32 elsewhere)")
    training.add_argument("--from-model", help="fine-tune from a model: starter, pretrained (U^2-Net-p before any cat training), best, a version id, "
                               "or a model folder")
    training.add_argument("--repeat", type=_repeat_rule, action="append", metavar="PATTERN=TIMES",
                          help="show training photos whose file name matches PATTERN (e.g. 'cat.*') TIMES times "
                               "an epoch; may be given several times")
    training.add_argument("--json", action="store_true", help="last line: JSON summary")
    training.set_defaults(handler=command_train)

    # argparse cannot hide a sub-command (help=SUPPRESS prints "==SUPPRESS=="), so it says what it is for.
    worker = commands.add_parser("train-worker", help="used by the Train page: runs a planned run RUN_ID")
    worker.add_argument("run_id", type=int)
    worker.set_defaults(handler=command_train_worker)

