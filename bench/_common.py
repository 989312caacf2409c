"""What the benches share: where the data sets are, the `--set FIELD=JSON` parser, a scratch data
folder and the seed-cats split.

A bench runs as `.venv/bin/python bench/NAME.py`, so this folder is on `sys.path` and
`import _common` finds this module; `catseg` and `storage` are installed (`pip install -e .`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator, Sequence

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent

# The licensed data sets live beside the checkout, never inside it.
SHARED_DATA = REPOSITORY_ROOT.parent / "shared" / "data"
SEED_CATS = SHARED_DATA / "seed-cats"
FERAL_CATS_VALID = SHARED_DATA / "feral-cats" / "valid"

# The seed-cats split every bench and the starter's model card use: photos sorted by file
# name, a quarter held out with seed 42 (catseg.train.splits.split_indices).
SEED_VALIDATION_FRACTION = 0.25
SEED_SPLIT_SEED = 42


def parse_settings(texts: Sequence[str]) -> dict[str, Any]:
    """`FIELD=JSON` texts (the `--set` arguments) as {field: value}; ValueError saying what to write."""
    settings = {}
    for text in texts:
        name, equals, value = text.partition("=")
        try:
            if not (name and equals):
                raise json.JSONDecodeError("no FIELD=", text, 0)
            settings[name.strip()] = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"--set {text}: write FIELD=VALUE with a JSON value, e.g. learning_rate=0.0003, "
                             "freeze_batch_norm=false or max_seconds=null") from None
    return settings


def apply_settings(texts: Sequence[str], *configs: Any) -> tuple:
    """The frozen `configs` with the `--set FIELD=JSON` changes, each field to the config that has it.

    ValueError for a field none of them has, a value that is not JSON, or one the config
    refuses (its own check, e.g. a negative learning rate).
    """
    settings = parse_settings(texts)
    fields_by_config = [{field.name for field in dataclasses.fields(config)} for config in configs]
    known = set().union(*fields_by_config)
    unknown = sorted(set(settings) - known)
    if unknown:
        names = " or ".join(type(config).__name__ for config in configs)
        raise ValueError(f"{names} has no field {', '.join(unknown)}; the fields are {', '.join(sorted(known))}")
    changed = []
    for config, fields in zip(configs, fields_by_config):
        changes = {name: value for name, value in settings.items() if name in fields}
        changed.append(dataclasses.replace(config, **changes) if changes else config)
    return tuple(changed)


@contextlib.contextmanager
def scratch_home(prefix: str = "catseg-bench-") -> Iterator[Path]:
    """A throw-away folder whose `home/` is CATSEG_HOME (SQLite, never DATABASE_URL) until the block ends.

    Yields the folder, for other scratch files beside the data folder.
    """
    saved = {name: os.environ.get(name) for name in ("CATSEG_HOME", "DATABASE_URL")}
    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        folder = Path(folder)
        os.environ["CATSEG_HOME"] = str(folder / "home")
        os.environ.pop("DATABASE_URL", None)
        try:
            yield folder
        finally:
            if "storage" in sys.modules:
                # Close the SQLite connections before their file is deleted.
                sys.modules["storage"].dispose_all()
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def seed_pairs(data: Path) -> list[tuple[Path, Path]]:
    """(photo, mask) pairs of a tutorial-layout folder (input/NAME, mask/mask_NAME), sorted by photo name."""
    photos = sorted((data / "input").glob("*.*"))
    return [(photo, data / "mask" / f"mask_{photo.name}") for photo in photos]


def seed_split_pairs(data: Path, validation_fraction: float = SEED_VALIDATION_FRACTION,
                     seed: int = SEED_SPLIT_SEED) -> tuple[list[tuple[Path, Path]], list[tuple[Path, Path]]]:
    """(training pairs, validation pairs) of the seed-cats split."""
    from catseg.train.splits import split_indices

    pairs = seed_pairs(data)
    if not pairs:
        raise ValueError(f"No photos in {data / 'input'}: pass the seed-cats folder (input/ and mask/).")
    train, valid = split_indices(len(pairs), validation_fraction, seed)
    return [pairs[index] for index in train], [pairs[index] for index in valid]


def write_split(data: Path, out: Path, validation_fraction: float = SEED_VALIDATION_FRACTION,
                seed: int = SEED_SPLIT_SEED) -> dict:
    """Write out/train and out/valid as tutorial-layout folders of symbolic links; returns the counts."""
    parts = dict(zip(("train", "valid"), seed_split_pairs(data, validation_fraction, seed)))
    for name, pairs in parts.items():
        for folder in ("input", "mask"):
            (out / name / folder).mkdir(parents=True, exist_ok=True)
        for photo, mask in pairs:
            for source, target in ((photo, out / name / "input" / photo.name),
                                   (mask, out / name / "mask" / mask.name)):
                target.unlink(missing_ok=True)
                target.symlink_to(source.resolve())
    return {"train": len(parts["train"]), "valid": len(parts["valid"]), "out": str(out)}
