"""Shared fixtures: an empty data folder per test, and drawn photos (no real data needed)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPOSITORY_ROOT.parent / "shared" / "data"


def pytest_collection_modifyitems(config, items):
    """Real-data tests run where ../shared exists (CI) and are skipped in a user's clone."""
    if SHARED_DATA.is_dir():
        return
    skip = pytest.mark.skip(reason="needs ../shared/data (real data sets)")
    for item in items:
        if "realdata" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def catseg_home(tmp_path, monkeypatch):
    """An empty CATSEG_HOME with its own SQLite database."""
    import storage

    home = tmp_path / "home"
    monkeypatch.setenv("CATSEG_HOME", str(home))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    yield home
    storage.dispose_all()


@pytest.fixture
def no_starter(tmp_path, monkeypatch):
    """Run as an installation without the shipped starter model (CATSEG_STARTER_MODEL -> a missing folder)."""
    missing = tmp_path / "no_starter_model"
    monkeypatch.setenv("CATSEG_STARTER_MODEL", str(missing))
    return missing


def run_cli(home, *arguments, timeout: int = 180):
    """`python -m catseg ARGUMENTS` with CATSEG_HOME=home, as a user runs it."""
    import os
    import subprocess
    import sys

    environment = {**os.environ, "CATSEG_HOME": str(home)}
    environment.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "catseg", *arguments],
        cwd=REPOSITORY_ROOT, env=environment, capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture
def fresh_streamlit_caches():
    """Probability maps and loaded models are cached per process; each test starts from none."""
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def drawn_cat(width: int = 120, height: int = 90, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A noisy photo with an orange ellipse 'cat', and the ellipse's 0/255 mask."""
    import cv2

    generator = np.random.default_rng(seed)
    photo = generator.integers(0, 120, size=(height, width, 3), dtype=np.uint8)
    mask = np.zeros((height, width), dtype=np.uint8)
    centre = (int(width * (0.4 + 0.2 * generator.random())), int(height * (0.4 + 0.2 * generator.random())))
    axes = (max(3, width // 4), max(3, height // 3))
    cv2.ellipse(mask, centre, axes, 15, 0, 360, 255, -1)
    photo[mask > 0] = (230, 140, 40)
    return photo, mask


def encode(pixels: np.ndarray, format: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=format, **options)
    return buffer.getvalue()
