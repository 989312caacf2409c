"""What the pages show while the database is out of reach: one message, never a traceback, nothing lost.

The outage is simulated in-process (AppTest runs the pages here); tests/test_database_restart.py
stops a real PostgreSQL server under the library.
"""

from __future__ import annotations

import numpy as np
import pytest

import storage
from storage import dataset
from conftest import add_labelled
from test_sign_in import open_page

pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")


def unreachable():
    raise storage.DatabaseUnavailable("The database at postgresql+psycopg://catseg@db:5432/catseg is unreachable: "
                                      "connection failed: Connection refused")


def test_a_mask_save_while_the_database_is_unreachable_keeps_the_strokes_to_save_again(catseg_home, monkeypatch):
    from test_pages_annotate import add_photos, draw, stroke

    photo_id, = add_photos(1)
    app = open_page("pages/labelling.py", {}, secrets={})
    draw(app, stroke([(60, 60), (200, 150)], width=30))
    real_begin = storage.begin
    monkeypatch.setattr(storage, "begin", unreachable)
    app.button(key="annotate_save").click().run()
    assert not app.exception, app.exception  # a message, not a traceback
    errors = [error.value for error in app.error]
    assert any("is unreachable" in error for error in errors), errors
    assert all("Traceback" not in error for error in errors)
    monkeypatch.setattr(storage, "begin", real_begin)
    app.run()
    assert not app.exception, app.exception
    pending = app.session_state["annotate_pending"]
    assert pending is not None and pending["photo_id"] == photo_id and pending["mask"].any()  # the strokes, kept
    app.button(key="annotate_save").click().run()
    with storage.begin() as session:
        saved = dataset.load_mask(session, photo_id)
    assert saved is not None and np.array_equal(saved > 0, pending["mask"] > 0)


def test_the_train_panel_says_the_database_is_unreachable_and_looks_again(catseg_home, monkeypatch):
    """The live panel refreshes on its own, outside the router: it words an outage itself."""
    import catseg.train.run_control

    add_labelled(6)
    monkeypatch.setattr(catseg.train.run_control, "start_run",
                        lambda model_config, train_config, start_from, created_by=None:
                        catseg.train.run_control.plan_run(model_config, train_config, start_from, created_by=created_by))
    app = open_page("pages/training.py", {}, secrets={})
    app.button(key="train_start").click().run()
    assert app.button(key="train_stop")  # the live panel

    # The panel's first look at the database each refresh is the reaper's.
    monkeypatch.setattr(catseg.train.run_control, "reap_dead_runs", unreachable)
    app.run()
    assert not app.exception, app.exception
    warnings = [warning.value for warning in app.warning]
    assert any("is unreachable" in warning and "looks again every 2 s" in warning for warning in warnings), warnings
