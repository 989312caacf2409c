"""Which labelled photos teach a run and which are held out to score it."""

from __future__ import annotations

import hashlib
from typing import Collection, Sequence


def split_indices(n: int, validation_fraction: float = 0.25, seed: int = 42) -> tuple[list[int], list[int]]:
    """Split ``range(n)`` into (train, validation) indices, fixed by ``seed``: the benches' seed-cats split.

    Exactly ``validation_fraction`` of the items, but adding one item reshuffles all of them;
    training runs use ``stable_split``.
    """
    from sklearn.model_selection import train_test_split

    if isinstance(n, bool) or not isinstance(n, int):
        raise ValueError(f"n must be a whole number, got {n!r}.")
    _check_split(n, validation_fraction)
    train, validation = train_test_split(
        list(range(n)), test_size=validation_fraction, random_state=seed, shuffle=True
    )
    if not train or not validation:
        raise ValueError(
            f"validation_fraction={validation_fraction} leaves an empty split for {n} photos; "
            "label more photos or change the fraction."
        )
    return sorted(train), sorted(validation)


def stable_split(keys: Sequence[str], validation_fraction: float = 0.25, seed: int = 42,
                 must_teach: Collection[str] = ()) -> tuple[list[int], list[int]]:
    """Split items into (train, validation) indices by a hash of each item's key and the seed.

    An item's side depends on its own key alone, so it keeps its side as the set grows: a photo
    an earlier run trained on never lands in a later run's hold-out, where it would flatter the
    model that learnt it (``split_indices`` shuffles positions, so one new photo reshuffles all).
    The validation share is ``validation_fraction`` on average; in a set too small to put a photo
    on each side, the lowest-scored item goes to validation or the highest-scored to training.

    ``must_teach``: keys a starting model has learnt already (another run's or the starter's
    training photos, whatever split made them). They always train, and the hold-out is drawn
    from the other items by the same rule; only when every item is in ``must_teach`` is the
    plain split used, with a hold-out that flatters the starting model.
    """
    count = len(keys)
    _check_split(count, validation_fraction)
    # A uniform number in [0, 1) per key, the same on every machine and in every Python.
    scores = [int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "big") / 2**64 for key in keys]
    learnt = frozenset(must_teach)
    candidates = [index for index, key in enumerate(keys) if key not in learnt] or list(range(count))
    validation = {index for index in candidates if scores[index] < validation_fraction}
    if not validation:
        validation = {min(candidates, key=scores.__getitem__)}
    elif len(validation) == count:
        validation.discard(max(range(count), key=scores.__getitem__))
    return [index for index in range(count) if index not in validation], sorted(validation)


def _check_split(count: int, validation_fraction: float) -> None:
    if count < 2:
        raise ValueError(f"Need at least 2 labelled photos to split into training and validation, got {count}.")
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be strictly between 0 and 1, got {validation_fraction}.")
