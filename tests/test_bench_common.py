"""bench/_common.py: the scratch data folder and the seed-cats split the benches share."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from _common import scratch_home, write_split


def test_scratch_home_is_a_throw_away_sqlite_home(monkeypatch):
    monkeypatch.setenv("CATSEG_HOME", "/somewhere/else")
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://nobody@nowhere/catseg")
    with scratch_home() as scratch:
        assert os.environ["CATSEG_HOME"] == str(scratch / "home")
        assert "DATABASE_URL" not in os.environ
    assert not scratch.exists()
    assert (os.environ["CATSEG_HOME"], os.environ["DATABASE_URL"]) == (
        "/somewhere/else", "postgresql+psycopg://nobody@nowhere/catseg")


def test_the_seed_split_is_a_quarter_held_out_as_links(tmp_path):
    data = tmp_path / "seed-cats"
    for folder in ("input", "mask"):
        (data / folder).mkdir(parents=True)
    for index in range(8):
        (data / "input" / f"cat.{index}.jpg").write_bytes(b"photo")
        (data / "mask" / f"mask_cat.{index}.jpg").write_bytes(b"mask")
    counts = write_split(data, tmp_path / "split")
    assert (counts["train"], counts["valid"]) == (6, 2)
    train = {path.name for path in (tmp_path / "split" / "train" / "input").iterdir()}
    valid = {path.name for path in (tmp_path / "split" / "valid" / "input").iterdir()}
    assert len(train | valid) == 8 and not train & valid
    linked = tmp_path / "split" / "valid" / "mask" / f"mask_{sorted(valid)[0]}"
    assert linked.is_symlink() and linked.resolve().parent == (data / "mask").resolve()
    assert write_split(data, tmp_path / "split") == counts  # written again over itself: the same split


def test_a_folder_without_photos_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="No photos in"):
        write_split(tmp_path, tmp_path / "split")
