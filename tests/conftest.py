"""Shared fixtures: an empty data folder per test, and drawn photos (no real data needed).

Tests marked `both_databases` get `catseg_home` twice: on SQLite, and on a fresh, empty
PostgreSQL database on the server named by CATSEG_TEST_POSTGRES_URL (which
`bash scripts/test.sh` starts); without that variable the PostgreSQL case is skipped.
"""

from __future__ import annotations

import io
import os
import time
import uuid
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPOSITORY_ROOT.parent / "shared" / "data"
DATABASE_BACKENDS = ("sqlite", "postgresql")
POSTGRES_URL_VARIABLE = "CATSEG_TEST_POSTGRES_URL"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "both_databases: catseg_home runs the test on SQLite and on PostgreSQL (CATSEG_TEST_POSTGRES_URL)"
    )


def pytest_generate_tests(metafunc):
    """A test marked both_databases that uses catseg_home runs once per database."""
    if "catseg_home" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_databases"):
        metafunc.parametrize("catseg_home", DATABASE_BACKENDS, indirect=True)


# Modules whose tests train networks or run the trainer's process: the bulk of the suite's time.
TRAINING_MODULES = {"test_runs", "test_training", "test_team", "test_database_restart", "test_starter_model"}


def is_slow(item) -> bool:
    """A browser, real data, a PostgreSQL server or training: left out of the quick loop (-m "not slow")."""
    if {"browser", "realdata"} & set(item.keywords) or item.module.__name__ in TRAINING_MODULES:
        return True
    parameters = getattr(item, "callspec", None)
    uses_postgres = parameters is not None and "postgresql" in parameters.params.values()
    return uses_postgres or "postgres_server" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(config, items):
    """Mark the slow tests; real-data tests run where ../shared exists (CI) and are skipped in a user's clone."""
    skip = None if SHARED_DATA.is_dir() else pytest.mark.skip(reason="needs ../shared/data (real data sets)")
    for item in items:
        if is_slow(item):
            item.add_marker(pytest.mark.slow)
        if skip is not None and "realdata" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def postgres_server():
    """An engine on CATSEG_TEST_POSTGRES_URL, to create and drop the tests' databases."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not url:
        pytest.skip(f"no PostgreSQL server: {POSTGRES_URL_VARIABLE} is unset (bash scripts/test.sh starts one)")
    engine = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    yield engine
    engine.dispose()


@contextmanager
def fresh_postgres_database(server):
    """The URL of a new, empty database on `server`, dropped afterwards."""
    from sqlalchemy import text

    name = f"catseg_test_{uuid.uuid4().hex[:16]}"
    with server.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect() as connection:
            # FORCE: a worker process the test started may still be connected.
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def catseg_home(request, tmp_path, monkeypatch):
    """An empty CATSEG_HOME with its own empty database: SQLite, or PostgreSQL in a both_databases test's case."""
    import storage

    home = tmp_path / "home"
    monkeypatch.setenv("CATSEG_HOME", str(home))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with ExitStack() as database:
        if getattr(request, "param", "sqlite") == "postgresql":
            server = request.getfixturevalue("postgres_server")
            monkeypatch.setenv("DATABASE_URL", database.enter_context(fresh_postgres_database(server)))
        yield home
        storage.dispose_all()  # before the database is dropped


@pytest.fixture
def switch_catseg_home(request, catseg_home, monkeypatch):
    """`switch(folder)` moves the test to another empty CATSEG_HOME with its own empty database."""
    import storage

    with ExitStack() as new_databases:

        def switch(home: Path) -> None:
            storage.dispose_all()
            monkeypatch.setenv("CATSEG_HOME", str(home))
            if storage.database_url().startswith("postgresql"):
                server = request.getfixturevalue("postgres_server")
                monkeypatch.setenv("DATABASE_URL", new_databases.enter_context(fresh_postgres_database(server)))

        yield switch
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


def run_python_without_tensorflow(home, code: str, timeout: int = 120):
    """Run `code` in a fresh interpreter with CATSEG_HOME=home, then check it never imported TensorFlow or Keras."""
    import os
    import subprocess
    import sys

    code += ("\nimport sys\nheavy = [name for name in ('tensorflow', 'keras') if name in sys.modules]\n"
             "assert not heavy, heavy\n")
    environment = {**os.environ, "CATSEG_HOME": str(home)}
    environment.pop("DATABASE_URL", None)
    return subprocess.run([sys.executable, "-c", code], cwd=REPOSITORY_ROOT, env=environment,
                          capture_output=True, text=True, timeout=timeout)


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


def write_tutorial_folder(folder: Path, count: int, first_seed: int = 10) -> Path:
    """`count` drawn cats in the tutorial layout (input/cN.png, mask/mask_cN.png) under `folder`."""
    (folder / "input").mkdir(parents=True)
    (folder / "mask").mkdir()
    for index in range(count):
        photo, mask = drawn_cat(120, 90, seed=first_seed + index)
        (folder / "input" / f"c{index}.png").write_bytes(encode(photo))
        (folder / "mask" / f"mask_c{index}.png").write_bytes(encode(mask))
    return folder


def add_labelled(count=6, first=0):
    """Store `count` drawn cats (numbered from `first`) with their masks in the current CATSEG_HOME."""
    import storage
    from catseg.data import intake

    with storage.begin() as session:
        for index in range(first, first + count):
            photo, mask = drawn_cat(64, 48, seed=index)
            intake.add_photo(session, encode(photo), f"{index}.png", mask=mask)


def wait_for(condition, timeout=120, what="condition"):
    """Poll `condition` until it returns something true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def run_status(run_id):
    """The stored view of a training run, read in its own transaction."""
    import storage
    from storage import runs

    with storage.begin() as session:
        return runs.run_view(session, run_id)


# A model version whose answer the tests control (see build_red_detector).
TINY_SIZE = 64


def build_red_detector(size: int = TINY_SIZE):
    """probability = sigmoid(40 * red - 28): about 1 for red >= 0.8 (the orange cat), 0 for red <= 0.5."""
    import keras

    inputs = keras.Input((size, size, 3), name="photo")
    layer = keras.layers.Conv2D(1, 1, activation="sigmoid", name="cat_probability")
    outputs = layer(inputs)
    layer.set_weights([np.array([40.0, 0.0, 0.0], dtype=np.float32).reshape(1, 1, 3, 1),
                       np.array([-28.0], dtype=np.float32)])
    return keras.Model(inputs, outputs)


def save_tiny_model(directory, size: int = TINY_SIZE):
    """Save the red detector as a catseg model version folder (model.keras + card.json)."""
    from catseg.model.config import ModelConfig, TrainConfig
    from catseg.model.versions import save_model_version

    return save_model_version(build_red_detector(size), ModelConfig(image_size=size), TrainConfig(),
                              {"val_iou": 0.9}, directory)


def register_tiny_model(val_iou: float = 0.9, name: str = "v1", run_id: int | None = None):
    """Save the red detector under CATSEG_HOME and register it as a model version; returns its view."""
    import storage
    from storage import runs

    directory = save_tiny_model(runs.models_folder() / name)
    with storage.begin() as session:
        return runs.add_model_version(session, run_id, "tiny", directory, "unet", TINY_SIZE, val_iou, {})


def register_fine_tune(starting_val_iou: float, val_iou: float, name: str, initial_model: str = "starter"):
    """A finished fine-tune run from `initial_model` scored `starting_val_iou` before training, and its version."""
    import storage
    from catseg.model.config import ModelConfig, TrainConfig
    from storage import runs

    with storage.begin() as session:
        run = runs.create_run(session, ModelConfig().to_dict(), TrainConfig().to_dict(), [1, 2, 3], [4], initial_model)
        runs.record_starting_score(session, run.id, starting_val_iou)
        runs.finish_run(session, run.id, "finished")
        run_id = run.id
    return register_tiny_model(val_iou, name, run_id)


@pytest.fixture
def tiny_version(catseg_home):
    return register_tiny_model()


@pytest.fixture
def tiny_predictor(tiny_version):
    from catseg.predict.predictor import Predictor

    return Predictor(tiny_version.directory)
