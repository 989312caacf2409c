"""`python -m catseg predict` (masks), `splash` (pictures) and `evaluate` (scores): applying a model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from catseg.cli.terminal import EXIT_FAILURE, Progress

MODEL_HELP = ("model version id, 'best' (best trained), 'starter' (shipped with catseg), 'pretrained' (U^2-Net-p "
              "before any cat training), or a model folder "
              "(model.keras + card.json); default: the best trained model, or the starter while none is trained")
VIEWS_HELP = ("quick (default): the few views of each photo the model card picks for speed; full: every view "
              "the card names (more network runs per photo, slower, a little more accurate)")


def _predictor(arguments: argparse.Namespace):
    """The chosen model on ONNX Runtime; a model saved by an older catseg is exported first, once."""
    from catseg.predict.predictor import Predictor
    from catseg.model.registry import resolve_model

    return Predictor(resolve_model(arguments.model), views=arguments.views,
                     progress=lambda message: print(f"{message}…", file=sys.stderr, flush=True))


def _photo_files(inputs: list[str]) -> list[Path]:
    """The photos named on the command line; folders contribute their photo files (not sub-folders)."""
    from catseg.data.decoding import is_image_name

    files: list[Path] = []
    for text in inputs:
        path = Path(text)
        if path.is_dir():
            found = sorted(child for child in path.iterdir() if child.is_file() and is_image_name(child.name))
            if not found:
                raise ValueError(f"{path}: no photos in this folder (JPEG, PNG, WebP, BMP or TIFF expected)")
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            raise ValueError(f"{path}: no such file or folder")
    return files


def command_predict(arguments: argparse.Namespace) -> int:
    from catseg.predict.predictor import write_mask

    files = _photo_files(arguments.inputs)
    output_folder = Path(arguments.out)
    if output_folder.exists() and not output_folder.is_dir():
        raise ValueError(f"{output_folder}: --out must be a folder")
    predictor = _predictor(arguments)
    progress = Progress("Predicting")
    failures, written, used_names = 0, 0, set()
    for done, path in enumerate(files, start=1):
        name = f"{path.stem}.png"
        try:
            if name in used_names:
                raise ValueError(f"{path}: another photo already wrote {name}; rename one of them")
            used_names.add(name)
            write_mask(predictor, path, output_folder / name, arguments.threshold)
            written += 1
        except (ValueError, OSError) as error:
            # One bad photo must not stop the batch: report it and carry on.
            failures += 1
            print(f"error: {error}", file=sys.stderr)
        progress(done, len(files), path.name)
    print(f"Wrote {written} mask(s) to {output_folder}; {failures} photo(s) failed.")
    return EXIT_FAILURE if failures else 0


def command_splash(arguments: argparse.Namespace) -> int:
    from catseg.predict.compositing import SplashSettings
    from catseg.predict.predictor import read_photo, splash_file

    settings = SplashSettings(
        effect=arguments.effect, threshold=arguments.threshold, feather_px=arguments.feather,
        colour=arguments.colour,
    )
    if arguments.effect == "picture" and arguments.background is None:
        raise ValueError("--effect picture needs --background PICTURE")
    background = read_photo(arguments.background) if arguments.effect == "picture" else None
    input_path = Path(arguments.input)
    if not input_path.is_file():
        raise ValueError(f"{input_path}: no such file")
    predictor = _predictor(arguments)
    written = splash_file(predictor, input_path, Path(arguments.output), settings, background)
    print(f"Wrote {written}")
    return 0


def command_evaluate(arguments: argparse.Namespace) -> int:
    from catseg.predict.evaluation import evaluate_folder

    folder = Path(arguments.data)
    if not folder.is_dir():
        raise ValueError(f"{folder}: no such folder")
    predictor = _predictor(arguments)
    result = evaluate_folder(predictor, folder, arguments.threshold)
    if arguments.json:
        print(json.dumps({**result.to_dict(), "model": str(predictor.directory),
                          "views": arguments.views, "sizes": list(predictor.views.sizes), "flip": predictor.views.flip}))
    else:
        print(
            f"{result.photos} photos: IoU {result.iou_mean:.3f} (mean per photo), "
            f"{result.iou_pooled:.3f} (pooled), Dice {result.dice_mean:.3f} (threshold {result.threshold:g})"
        )
    return 0


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number between 0 and 1") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"threshold must be between 0 and 1, got {value}")
    return value


def _pixels(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of pixels") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"feather must be 0 or more pixels, got {value}")
    return value


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add `predict`, `splash` and `evaluate` to the CLI's sub-commands."""
    from catseg.predict.views import VIEW_SETS

    predict = commands.add_parser("predict", help="write a full-resolution mask PNG (0/255) per photo")
    predict.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="photos, or folders of photos")
    predict.add_argument("--model", default=None, help=MODEL_HELP)
    predict.add_argument("--views", choices=VIEW_SETS, default="quick", help=VIEWS_HELP)
    predict.add_argument("--out", required=True, help="folder for the masks (<photo stem>.png)")
    predict.add_argument("--threshold", type=_threshold, default=0.5)
    predict.set_defaults(handler=command_predict)

    splash = commands.add_parser("splash", help="colour-splash one photo (cat in colour, background changed)")
    splash.add_argument("input", metavar="IN", help="the photo")
    splash.add_argument("output", metavar="OUT", help="the result: .jpg or .png (transparent always writes .png)")
    splash.add_argument("--model", default=None, help=MODEL_HELP)
    splash.add_argument("--views", choices=VIEW_SETS, default="quick", help=VIEWS_HELP)
    splash.add_argument("--effect", choices=("grey", "blur", "colour", "transparent", "picture"), default="grey")
    splash.add_argument("--threshold", type=_threshold, default=0.5)
    splash.add_argument("--feather", type=_pixels, default=0, help="soft edge width in pixels (0: hard edge)")
    splash.add_argument("--colour", default="#ffffff", help="background colour for --effect colour (#RRGGBB)")
    splash.add_argument("--background", default=None, help="background picture for --effect picture")
    splash.set_defaults(handler=command_splash)

    evaluate = commands.add_parser("evaluate", help="score a model on a labelled folder (tutorial or YOLO)")
    evaluate.add_argument("--model", default=None, help=MODEL_HELP)
    evaluate.add_argument("--views", choices=VIEW_SETS, default="quick", help=VIEWS_HELP)
    evaluate.add_argument("--data", required=True, help="a tutorial-layout (input/ + mask/) or YOLO folder")
    evaluate.add_argument("--threshold", type=_threshold, default=0.5)
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.set_defaults(handler=command_evaluate)

