"""Write the seed-cats train/validation split (75/25, seed 42) as two tutorial-layout folders.

The folders hold symbolic links to ../shared/data, never copies, and are written outside
the repository: train on one with `python -m catseg import`, score on the other with
`python -m catseg evaluate`. Every bench uses the same split (bench/_common.py).

    .venv/bin/python bench/seed_split.py --out /tmp/seed-split
    # -> /tmp/seed-split/train/{input,mask}, /tmp/seed-split/valid/{input,mask}
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _common import SEED_CATS, SEED_SPLIT_SEED, SEED_VALIDATION_FRACTION, seed_pairs, write_split

__all__ = ["seed_pairs", "write_split"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=SEED_CATS)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--validation-fraction", type=float, default=SEED_VALIDATION_FRACTION)
    parser.add_argument("--seed", type=int, default=SEED_SPLIT_SEED)
    arguments = parser.parse_args()
    try:
        counts = write_split(arguments.data, arguments.out, arguments.validation_fraction, arguments.seed)
    except ValueError as error:  # a wrong --data: a usage message, not a traceback
        parser.error(str(error))
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
