"""Write the starter's learnt_photos.txt: the content hashes of the photos its training run learnt.

A run fine-tuned from a model never holds out a photo that model learnt (catseg.train.splits.stable_split's
must_teach): held out, it would flatter the starting model. Runs record what they learnt when they save
a version; the starter was trained before they did, and before runs split by content hash. Its run
(catseg/starter_model/README.md) held out 8% of the labelled photos by position, seed 42
(catseg.train.splits.split_indices), in import order: feral-cats/train's labelled images by file name (a
repeated photo kept once), then the seed-cats training split's photos by file name. This script
redoes that split from ../shared/data, checks it against the counts in the starter's card, and writes
the hashes of the photos on the training side:

    .venv/bin/python scripts/starter_learnt_photos.py
    .venv/bin/python scripts/starter_learnt_photos.py --check   # compare with the committed file
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent

from _common import SEED_CATS, SHARED_DATA, seed_split_pairs

from catseg.model.versions import CARD_FILENAME, LEARNT_PHOTOS_FILENAME, learnt_photos_text
from catseg.model.registry import SHIPPED_STARTER_DIRECTORY

FERAL_CATS_TRAIN = SHARED_DATA / "feral-cats" / "train"


def starter_training_photos(feral_train: Path = FERAL_CATS_TRAIN, seed_cats: Path = SEED_CATS,
                            card: dict | None = None) -> set[str]:
    """Content hashes of the photos on the training side of the starter's run, checked against its card."""
    from catseg.train.splits import split_indices
    from storage.dataset import content_hash

    card = card or json.loads((SHIPPED_STARTER_DIRECTORY / CARD_FILENAME).read_text(encoding="utf-8"))
    feral = sorted(path for path in (feral_train / "images").iterdir()
                   if (feral_train / "labels" / f"{path.stem}.txt").is_file())
    seed = [photo for photo, _ in seed_split_pairs(seed_cats)[0]]
    imported: list[tuple[str, str]] = []  # (data set, content hash) in photo-id order
    seen: set[str] = set()
    for data_set, photos in (("feral", feral), ("seed", seed)):
        for photo in sorted(photos, key=lambda path: path.name):
            digest = content_hash(photo.read_bytes())
            if digest not in seen:  # the importer skips a photo it already has
                seen.add(digest)
                imported.append((data_set, digest))
    train_config, metrics = card["train_config"], card["metrics"]
    train, validation = split_indices(len(imported), train_config["validation_fraction"], train_config["seed"])
    seed_repeat = 4  # the card's command: --repeat 'cat.*=4'
    shown = sum(seed_repeat if imported[index][0] == "seed" else 1 for index in train)
    if len(validation) != metrics["validation_photos"] or shown != metrics["train_photos"]:
        raise SystemExit(
            f"This split does not match the starter's run: {len(validation)} held out and {shown} shown an epoch, "
            f"the card says {metrics['validation_photos']} and {metrics['train_photos']}.")
    return {imported[index][1] for index in train}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=SHIPPED_STARTER_DIRECTORY / LEARNT_PHOTOS_FILENAME)
    parser.add_argument("--check", action="store_true", help="compare with --out instead of writing it")
    arguments = parser.parse_args()
    text = learnt_photos_text(starter_training_photos())
    if arguments.check:
        same = arguments.out.is_file() and arguments.out.read_text(encoding="ascii") == text
        print(json.dumps({"out": str(arguments.out), "photos": text.count("\n"), "matches": same}))
        raise SystemExit(0 if same else 1)
    arguments.out.write_text(text, encoding="ascii")
    print(json.dumps({"out": str(arguments.out), "photos": text.count("\n")}))


if __name__ == "__main__":
    main()
