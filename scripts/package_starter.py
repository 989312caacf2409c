"""Package a trained model version as catseg's starter model, with its model card.

The starter is trained with catseg's own CLI (see catseg/starter_model/README.md for
the exact commands); this script copies the run's best version into the package,
without the optimizer state (a third of the size, and fine-tuning starts a fresh
optimizer anyway), and writes the card from measured numbers only:

    CATSEG_HOME=/tmp/starter-home .venv/bin/python scripts/package_starter.py \\
        --run-id 1 --run-id 2 --command "python -m catseg train ..." \\
        --evaluation "feral-cats/valid=/tmp/starter/eval-feral.json" \\
        --evaluation "seed-cats validation split=/tmp/starter/eval-seed.json"

Each evaluation file is the JSON line of `python -m catseg evaluate --json`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent

from catseg.predict.views import TEST_TIME_SCALES, card_views, scaled_input_sizes
from catseg.model.registry import SHIPPED_STARTER_DIRECTORY

MAXIMUM_MEGABYTES = 15
DEFAULT_HARDWARE = "a 2-core CPU"
TRAINING_DATA = [
    {"name": "feral-cats/train (Cornell Feline Health Center, via Roboflow Universe)", "photos": None,
     "licence": "Public Domain"},
    {"name": "seed-cats training split (Arda Mavi's Cat-Segmentation, the tutorial's photos)", "photos": None,
     "licence": "Apache License 2.0"},
]
LIMITS = [
    "Several cats in one photo: all are painted as one cat mask; small cats far away are often missed.",
    "Cats cut by the frame or hidden behind bars, grass or fences get ragged edges.",
    "Dark cats at night and cats in deep shade blend into the background.",
    "It works on a {size}-pixel view of the photo, so whiskers and fur edges are smooth, not exact.",
    "It saw mostly outdoor feral cats and some indoor pets; other animals may be taken for cats.",
]


def parse_evaluation(text: str) -> dict:
    name, separator, path = text.partition("=")
    if not separator:
        raise SystemExit(f"--evaluation needs NAME=FILE, got {text!r}")
    result = json.loads(Path(path).read_text(encoding="utf-8").strip().splitlines()[-1])
    return {"name": name, "photos": result["photos"], "iou_mean": round(result["iou_mean"], 4),
            "iou_pooled": round(result["iou_pooled"], 4), "dice_mean": round(result["dice_mean"], 4),
            "threshold": result["threshold"], "views": result.get("views", "full")}


def augmentation_words(train_config: dict) -> str:
    """How the last stage augmented its photos, in words for the card."""
    if not train_config.get("augment"):
        return "off"
    share = train_config.get("close_up_probability", 0.0)
    return f"on, with close-up crops of the cat in {share:.0%} of the draws" if share else "on"


def recorded_seconds_by_hardware(about: dict | None) -> dict[str, float]:
    """A card's training seconds per machine; cards from before it said were all on DEFAULT_HARDWARE."""
    about = about or {}
    if about.get("seconds_by_hardware"):
        return dict(about["seconds_by_hardware"])
    return {DEFAULT_HARDWARE: about["seconds"]} if about.get("seconds") else {}


def seconds_by_hardware(previous_about: dict | None, hardware: str, seconds: float) -> dict[str, float]:
    """Training seconds per machine: an earlier card's, then these `seconds` on `hardware`."""
    result = recorded_seconds_by_hardware(previous_about)
    result[hardware] = round(result.get(hardware, 0.0) + seconds, 1)
    return result


def training_time_words(about: dict) -> str:
    """'512 minutes on a 2-core CPU', or the total and its share per machine when there were several."""
    by_hardware = recorded_seconds_by_hardware(about)
    if len(by_hardware) == 1:
        (hardware, seconds), = by_hardware.items()
        return f"{seconds / 60:.0f} minutes on {hardware}"
    parts = ", ".join(f"{seconds / 60:.0f} on {hardware}" for hardware, seconds in by_hardware.items())
    return f"{about['seconds'] / 60:.0f} minutes ({parts})"


def network_words(model_config: dict, about: dict) -> str:
    """The network in words for the card."""
    if model_config["architecture"] == "u2netp":
        return (f"`u2netp` (U^2-Net-p, Qin et al. 2020, {about['parameters']:,} parameters; "
                "weights Apache-2.0, see NOTICE)")
    return (f"`{model_config['architecture']}` (batch-norm U-Net, {about['parameters']:,} parameters, "
            f"base filters {model_config.get('base_filters')})")


def loss_words(model_config: dict) -> str:
    if model_config["architecture"] == "u2netp":
        return "BCE + Dice loss on the fused map and all six side outputs (deep supervision)"
    return "BCE + Dice loss"


def model_card_markdown(card: dict) -> str:
    """The human-readable model card (README.md beside the model)."""
    about = card["about"]
    model_config, train_config = card["model_config"], card["train_config"]
    full, quick = card_views(card, "full"), card_views(card, "quick")
    lines = [
        "# Starter cat model",
        "",
        "The model catseg uses before you train your own: the Try page's default on a fresh start, "
        "Annotate's pre-fill while no model of yours exists, and the Train page's default starting "
        "point for fine-tuning.",
        "",
        f"- Network: {network_words(model_config, about)}, "
        f"input {model_config['image_size']} x {model_config['image_size']} px (photos are letterboxed).",
        *([f"- Started from: {about['started_from']}."] if about.get("started_from") else []),
        f"- Training: {about['epochs']} epochs in {about['stages']} stage(s), {training_time_words(about)}, "
        f"batch {train_config['batch_size']}, Adam {train_config['learning_rate']:g} with a cosine decay, "
        f"{train_config.get('precision', 'float32').replace('auto', 'mixed bfloat16 or float32')} arithmetic, "
        f"augmentation {augmentation_words(train_config)}, {loss_words(model_config)}; the epoch with the best "
        f"IoU on a {train_config['validation_fraction']:.0%} hold-out of the training photos was kept "
        f"(epoch {about['best_epoch']} of the last stage, IoU {card['metrics'].get('val_iou', float('nan')):.3f}). "
        "The settings shown are the last stage's; the commands below give every stage.",
        "",
        "## Training data",
        "",
    ]
    lines += [f"- {item['name']}: {item['photos']} photos. Licence: {item['licence']}." for item in about["data"]]
    lines += [
        "",
        "The photos themselves are not in this repository; they are the licensed sets in `../shared/data`. "
        "`learnt_photos.txt` lists the SHA-256 content hashes of those on the training side of its run (the rest "
        "were its hold-out): a run fine-tuned from this model learns from them again but never holds them out, "
        "where they would flatter it.",
        "",
        "## Scores on photos it never saw",
        "",
        "Mean foreground IoU per photo at full resolution, threshold 0.5, printed by `python -m catseg evaluate`. "
        f"The app and the command line use the quick views by default ({views_words(quick)}); "
        f"`--views full` averages every view this card names ({views_words(full)}), which costs "
        f"{full.count} network runs a photo instead of {quick.count}:",
        "",
        "| Set | Views | Photos | IoU (mean per photo) | IoU (pooled) | Dice (mean) |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {item['name']} | {item.get('views', 'full')} | {item['photos']} | {item['iou_mean']:.4f} | "
              f"{item['iou_pooled']:.4f} | {item['dice_mean']:.3f} |" for item in about["evaluation"]]
    costs = quick_view_costs(about["evaluation"])
    if costs:
        lines += ["", "The quick views cost " + " and ".join(f"{cost:.3f} IoU on {name}" for name, cost in costs)
                  + " against the full set."]
    lines += ["", "## How it was made", "", "```sh"] + about["commands"] + ["```", "", "## Known limits", ""]
    lines += [f"- {limit.format(size=model_config['image_size'])}" for limit in about["limits"]]
    lines += ["", "## Training curve", "",
              "IoU is pooled over the pixels of each stage's model inputs (Keras `BinaryIoU`, at the input size "
              "in the table), so it differs from the per-photo scores above.", "",
              "| Epoch | Stage | Input px | Loss | IoU | Validation loss | Validation IoU | Learning rate |",
              "|---|---|---|---|---|---|---|---|"]
    for row in about["curve"]:
        lines.append(f"| {row['epoch']} | {row['stage']} | {row.get('image_size', model_config['image_size'])} | "
                     f"{row['loss']:.3f} | {row['iou']:.3f} | "
                     f"{row['val_loss']:.3f} | {row['val_iou']:.3f} | {row['learning_rate']:.2e} |")
    return "\n".join(lines) + "\n"


def quick_view_costs(evaluation: list[dict]) -> list[tuple[str, float]]:
    """(set, full IoU - quick IoU) for every set the card scores with both view sets."""
    scores = {(item["name"], item.get("views", "full")): item["iou_mean"] for item in evaluation}
    return [(name, scores[(name, "full")] - scores[(name, "quick")])
            for name, views in scores if views == "quick" and (name, "full") in scores]


def views_words(views) -> str:
    """A view set in words for the card, e.g. "the photo and its mirror image at 256 and 320 px"."""
    photo = "the photo and its mirror image" if views.flip else "the photo"
    sizes = [str(size) for size in views.sizes]
    return f"{photo} at {' and '.join(filter(None, [', '.join(sizes[:-1]), sizes[-1]]))} px"


def combined_curve(previous_about: dict | None, stages: list[tuple[int, list[dict]]]) -> tuple[list[dict], int]:
    """The whole training curve: an earlier card's stages first, then `stages` ((input size, epoch rows) each).

    Epochs are numbered through all stages; returns the curve and the number of stages.
    """
    curve = [dict(row) for row in (previous_about or {}).get("curve", [])]
    stage_count = (previous_about or {}).get("stages", 0)
    for image_size, rows in stages:
        stage_count += 1
        curve += [dict(row, stage=stage_count, epoch_in_stage=row["epoch"], image_size=image_size) for row in rows]
    for number, row in enumerate(curve, start=1):
        row["epoch"] = number
    return curve, stage_count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-id", type=int, action="append", required=True,
                        help="the training runs (in $CATSEG_HOME), in order; the last one's model is shipped")
    parser.add_argument("--command", action="append", required=True, help="a command that made it, in order")
    parser.add_argument("--evaluation", action="append", default=[], metavar="NAME=FILE",
                        help="a `catseg evaluate --json` result of the packaged model (run it on a first packaging)")
    parser.add_argument("--feral-photos", type=int, required=True, help="feral-cats/train photos imported")
    parser.add_argument("--seed-photos", type=int, required=True, help="seed-cats training-split photos imported")
    parser.add_argument("--test-time-scales", type=lambda text: [float(part) for part in text.split(",")],
                        help="this model's test-time scales, e.g. 0.8,1,1.25 (picked with bench/view_sets.py "
                             f"on the run's hold-out); default {','.join(map(str, TEST_TIME_SCALES))}")
    parser.add_argument("--previous-card", type=Path,
                        help="card.json of the starter these runs continued from (its stages come first in the "
                             "curve, its minutes in the total), when the runs that made it are in another database")
    parser.add_argument("--hardware", default=DEFAULT_HARDWARE,
                        help=f"what these runs trained on, for the card (default: {DEFAULT_HARDWARE!r})")
    parser.add_argument("--no-flip", action="store_true",
                        help="run each test-time size once, without the mirror image (card: test_time_flip false)")
    parser.add_argument("--quick-scales", type=lambda text: [float(part) for part in text.split(",")],
                        help="the app's quick test-time scales (picked with bench/view_sets.py for its speed budget)")
    parser.add_argument("--quick-flip", action="store_true", help="the quick views add the mirror image")
    parser.add_argument("--started-from", help="the weights the first run started from, in words, for the card")
    parser.add_argument("--notice", type=Path, action="append", default=[],
                        help="a licence NOTICE file the starting weights ask to keep; copied beside the model")
    parser.add_argument("--seed-repeat", type=int, default=1,
                        help="how many times an epoch each seed-cats photo was shown (catseg train --repeat)")
    parser.add_argument("--out", type=Path, default=SHIPPED_STARTER_DIRECTORY)
    arguments = parser.parse_args()
    previous_about = None
    if arguments.previous_card is not None:
        previous_about = json.loads(arguments.previous_card.read_text(encoding="utf-8"))["about"]

    import storage
    from catseg.predict.onnx_export import export_networks
    from catseg.model.versions import CARD_FILENAME, LEARNT_PHOTOS_FILENAME, MODEL_FILENAME, load_model_version
    from catseg.predict.views import exported_sizes
    from storage import runs

    shipped_run = arguments.run_id[-1]
    new_seconds = 0.0
    stages = []
    with storage.begin() as session:
        version = runs.model_version_for_run(session, shipped_run)
        run = runs.run_view(session, shipped_run)
        for run_id in arguments.run_id:
            stage_run = runs.run_view(session, run_id)
            new_seconds += stage_run.seconds or 0.0
            stages.append((stage_run.model_config["image_size"], runs.epoch_rows(session, run_id)))
    if version is None:
        raise SystemExit(f"Run #{shipped_run} has no model version.")
    curve, stage_count = combined_curve(previous_about, stages)
    by_hardware = seconds_by_hardware(previous_about, arguments.hardware, new_seconds)
    model, _, card = load_model_version(version.directory)  # uncompiled: no optimizer state is saved
    if arguments.test_time_scales:
        scaled_input_sizes(card["model_config"]["image_size"], arguments.test_time_scales)  # ValueError if invalid
        card["test_time_scales"] = arguments.test_time_scales
    if arguments.no_flip:
        card["test_time_flip"] = False
    if arguments.quick_scales:
        scaled_input_sizes(card["model_config"]["image_size"], arguments.quick_scales)  # ValueError if invalid
        card["quick_views"] = {"scales": arguments.quick_scales, "flip": arguments.quick_flip}
    seed_data = dict(TRAINING_DATA[1], photos=arguments.seed_photos)
    if arguments.seed_repeat > 1:
        seed_data["name"] += f", each shown {arguments.seed_repeat} times an epoch"
    data = [dict(TRAINING_DATA[0], photos=arguments.feral_photos), seed_data]
    card["about"] = {
        "data": data,
        "evaluation": [parse_evaluation(text) for text in arguments.evaluation],
        "limits": LIMITS,
        "commands": arguments.command,
        **({"started_from": arguments.started_from} if arguments.started_from else {}),
        "parameters": int(model.count_params()),
        "epochs": len(curve),
        "best_epoch": run.best_epoch,
        "stages": stage_count,
        "seconds": round(sum(by_hardware.values()), 1),
        "seconds_by_hardware": by_hardware,
        "curve": [{key: row[key] for key in ("epoch", "stage", "epoch_in_stage", "image_size", "loss", "iou", "val_loss",
                                             "val_iou", "learning_rate", "seconds")} for row in curve],
    }

    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".starter-", dir=arguments.out.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the package is read by whoever runs the app
    try:
        model.save(staging / MODEL_FILENAME)
        card["inference"] = export_networks(model, staging, exported_sizes(card))
        (staging / CARD_FILENAME).write_text(json.dumps(card, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        (staging / "README.md").write_text(model_card_markdown(card), encoding="utf-8")
        for notice in arguments.notice:
            shutil.copyfile(notice, staging / notice.name)
        # What the runs learnt, so that fine-tunes of the starter never hold those photos out.
        learnt_photos = version.directory / LEARNT_PHOTOS_FILENAME
        if learnt_photos.is_file():
            shutil.copyfile(learnt_photos, staging / LEARNT_PHOTOS_FILENAME)
        for network_file in [staging / MODEL_FILENAME, *staging.glob("*.onnx")]:
            megabytes = network_file.stat().st_size / 2**20
            if megabytes > MAXIMUM_MEGABYTES:
                raise SystemExit(f"{network_file.name} is {megabytes:.1f} MB, over the {MAXIMUM_MEGABYTES} MB limit.")
        if arguments.out.exists():
            shutil.rmtree(arguments.out)
        os.rename(staging, arguments.out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    print(json.dumps({"out": str(arguments.out), "megabytes": round(megabytes, 2),
                      "evaluation": card["about"]["evaluation"]}))


if __name__ == "__main__":
    main()
