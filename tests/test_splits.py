"""Splitting labelled photos into the ones that teach a run and the ones held out to score it."""

import hashlib

import pytest

from catseg.train.splits import split_indices, stable_split


def test_the_bench_split_is_fixed_by_the_seed() -> None:
    train, validation = split_indices(81, 0.25, seed=42)
    assert (len(train), len(validation)) == (60, 21)
    assert sorted(train + validation) == list(range(81))
    assert split_indices(81, 0.25, seed=42) == (train, validation)
    assert split_indices(81, 0.25, seed=7) != (train, validation)
    with pytest.raises(ValueError, match="at least 2"):
        split_indices(1)


def keys(count: int, start: int = 0) -> list[str]:
    """Content-hash-like keys, as the photos of a dataset have."""
    return [hashlib.sha256(str(number).encode()).hexdigest() for number in range(start, start + count)]


def held_out(items: list[str], fraction: float = 0.25, seed: int = 42) -> set[str]:
    _, validation = stable_split(items, fraction, seed)
    return {items[index] for index in validation}


def test_a_photo_keeps_its_side_when_more_photos_are_labelled() -> None:
    first = keys(40)
    grown = first + keys(60, start=40)
    # The photos of the first set that trained the first run are still training photos later.
    assert held_out(grown) & set(first) == held_out(first)
    # The order the photos come in does not matter either.
    assert held_out(list(reversed(grown))) == held_out(grown)
    # split_indices, by contrast, reshuffles: that is why runs do not use it.
    train_before, _ = split_indices(40, 0.25, 42)
    _, validation_after = split_indices(100, 0.25, 42)
    assert set(train_before) & set(validation_after)


def test_the_held_out_share_is_the_fraction_on_average_and_follows_the_seed() -> None:
    items = keys(2000)
    train, validation = stable_split(items, 0.25, 42)
    assert sorted(train + validation) == list(range(2000))
    assert 0.22 < len(validation) / 2000 < 0.28
    assert held_out(items, seed=7) != held_out(items, seed=42)
    assert held_out(items, fraction=0.1) < held_out(items, fraction=0.25)  # a larger share only adds photos


@pytest.mark.parametrize("count", [2, 3, 4, 5])
def test_a_tiny_set_still_gets_a_photo_on_each_side(count: int) -> None:
    for seed in range(30):
        train, validation = stable_split(keys(count), 0.25, seed)
        assert train and validation and sorted(train + validation) == list(range(count))


def test_bad_splits_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        stable_split(keys(1))
    with pytest.raises(ValueError, match="strictly between"):
        stable_split(keys(10), 1.0)


def test_photos_the_starting_model_learnt_always_teach() -> None:
    items = keys(200)
    _, plain = stable_split(items, 0.25, 42)
    learnt = {items[index] for index in plain[: len(plain) // 2]} | set(items[:50])
    train, validation = stable_split(items, 0.25, 42, must_teach=learnt)
    assert sorted(train + validation) == list(range(200))
    held = {items[index] for index in validation}
    # None of the learnt photos is held out; the others keep the side the plain split gives them.
    assert not held & learnt
    assert held == {items[index] for index in plain} - learnt
    assert stable_split(items, 0.25, 42, must_teach=()) == stable_split(items, 0.25, 42)


def test_a_hold_out_comes_from_the_photos_not_learnt_however_few() -> None:
    items = keys(30)
    for new in items[:3]:
        train, validation = stable_split(items, 0.25, 42, must_teach=set(items) - {new})
        assert [items[index] for index in validation] == [new]  # the only photo the start has not seen
    # When the start learnt every photo there is nothing fair to hold out: the plain split stands.
    assert stable_split(items, 0.25, 42, must_teach=set(items)) == stable_split(items, 0.25, 42)
