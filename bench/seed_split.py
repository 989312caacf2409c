"""Materialise the seed-cats train/validation split (75/25, seed 42) as two tutorial-layout folders.

The folders hold symbolic links to ../shared/data, never copies, and are written outside
the repository. The split is the one `bench/train_quality.py` and `train_vs_tutorial.py`
use: photos sorted by file name, then `catseg.pipeline.split_indices(n, 0.25, seed=42)`.

    .venv/bin/python bench/seed_split.py --out /tmp/seed-split
    # -> /tmp/seed-split/train/{input,mask}, /tmp/seed-split/valid/{input,mask}
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from catseg.pipeline import split_indices  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "seed-cats"


def seed_pairs(data: Path) -> list[tuple[Path, Path]]:
    """(photo, mask) pairs of a tutorial-layout folder, sorted by photo file name."""
    photos = sorted((data / "input").glob("*.*"))
    return [(photo, data / "mask" / f"mask_{photo.name}") for photo in photos]


def write_split(data: Path, out: Path, validation_fraction: float = 0.25, seed: int = 42) -> dict:
    """Write out/train and out/valid (input/ + mask/ symlinks); returns the counts."""
    pairs = seed_pairs(data)
    train, valid = split_indices(len(pairs), validation_fraction, seed)
    for name, indices in (("train", train), ("valid", valid)):
        for folder in ("input", "mask"):
            (out / name / folder).mkdir(parents=True, exist_ok=True)
        for index in indices:
            photo, mask = pairs[index]
            for source, target in ((photo, out / name / "input" / photo.name),
                                   (mask, out / name / "mask" / mask.name)):
                target.unlink(missing_ok=True)
                target.symlink_to(source.resolve())
    return {"train": len(train), "valid": len(valid), "out": str(out)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--validation-fraction", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=42)
    arguments = parser.parse_args()
    print(json.dumps(write_split(arguments.data, arguments.out, arguments.validation_fraction, arguments.seed)))


if __name__ == "__main__":
    main()
