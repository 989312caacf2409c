"""Which views of a photo a model predicts on: input sizes, and whether the mirror image is added.

A model version's card names its full set ("test_time_scales" x the model's input size, and
"test_time_flip"), the views that scored best on unseen photos. Each view costs a network run,
so predictions use the quick set by default ("quick_views" in the card, else ``QUICK_VIEWS``),
and the full set is one setting away (``views="full"``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

VIEW_SETS = ("quick", "full")
# The full set for a card that names none: the model's own size and 1.25 and 1.5 times it, each mirrored.
TEST_TIME_SCALES = (1.0, 1.25, 1.5)
TEST_TIME_FLIP = True
# The quick set for a card that names none (chosen by bench/view_sets.py, see docs/benchmarks.md).
QUICK_VIEWS = {"scales": [1.25], "flip": True}


@dataclass(frozen=True)
class Views:
    """The input sizes a photo is run at, and whether each also runs its mirror image."""

    sizes: tuple[int, ...]
    flip: bool

    @property
    def count(self) -> int:
        """Network runs per photo."""
        return len(self.sizes) * (2 if self.flip else 1)


def scaled_input_sizes(size: int, scales: Iterable[float]) -> tuple[int, ...]:
    """The distinct input sizes for `scales` x `size`, multiples of 32, in the order given."""
    sizes: list[int] = []
    for scale in scales:
        if isinstance(scale, bool) or not (isinstance(scale, (int, float)) and 0 < scale <= 4):
            raise ValueError(f"A test-time scale must be a number above 0 and at most 4, got {scale!r}.")
        scaled_size = size if scale == 1 else max(32, round(size * scale / 32) * 32)
        if scaled_size not in sizes:
            sizes.append(scaled_size)
    if not sizes:
        raise ValueError("A view set needs at least one scale.")
    return tuple(sizes)


def card_views(card: Mapping[str, Any], which: str = "quick") -> Views:
    """The quick or full view set of the model a card describes."""
    if which not in VIEW_SETS:
        raise ValueError(f"Unknown view set {which!r}; choose one of {', '.join(VIEW_SETS)}.")
    size = int(card["model_config"]["image_size"])
    if which == "quick":
        quick = card.get("quick_views") or QUICK_VIEWS
        return Views(scaled_input_sizes(size, quick.get("scales") or [1.0]), bool(quick.get("flip", False)))
    scales = card.get("test_time_scales") or TEST_TIME_SCALES
    return Views(scaled_input_sizes(size, scales), bool(card.get("test_time_flip", TEST_TIME_FLIP)))


def exported_sizes(card: Mapping[str, Any]) -> tuple[int, ...]:
    """Every input size either view set of a card runs at, in increasing order."""
    return tuple(sorted({*card_views(card, "quick").sizes, *card_views(card, "full").sizes}))
