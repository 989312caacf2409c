"""No one in who does not belong: the server listens on this machine only, and with [auth] every page waits for sign-in.

With sign-in configured, changes carry their author (the signed-in user; the CLI's OS user).
AppTest fakes the user (AppTest.user) and the `[auth]` secrets (AppTest.secrets).
"""

from __future__ import annotations

import getpass
import ipaddress
import os
import socket
import subprocess
import sys

import psutil
import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.util import patch_config_options

import storage
from catseg.model.config import ModelConfig, TrainConfig
from storage import dataset, runs
from browser_support import free_port, wait_until_healthy
from conftest import REPOSITORY_ROOT, add_labelled, run_cli, write_tutorial_folder

APP = str(REPOSITORY_ROOT / "app.py")
PAGES = ["pages/home.py", "pages/photo_gallery.py", "pages/labelling.py", "pages/training.py", "pages/try_photos.py"]
AUTH = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "a-long-random-cookie-secret-for-tests",
        "client_id": "catseg", "client_secret": "not-a-secret",
        "server_metadata_url": "https://id.example.org/.well-known/openid-configuration"}
SIGNED_OUT = {"is_logged_in": False}
ADA = {"is_logged_in": True, "email": "ada@example.org", "name": "Ada"}

pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")


def open_page(page: str, user: dict, secrets: dict | None = None) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60)
    app.secrets = secrets if secrets is not None else {"auth": AUTH}
    app.user = user
    app.run()
    app.switch_page(page)
    return app.run()


def everything_shown(app: AppTest) -> str:
    """The text of every element on the page, for looking for what must not be there."""
    return "\n".join(str(getattr(element, "value", "") or getattr(element, "label", "") or "")
                     for kind in ("title", "markdown", "caption", "text", "subheader", "header", "info", "warning",
                                  "success", "error", "selectbox", "checkbox", "button", "metric")
                     for element in app.get(kind))


@pytest.fixture
def shared_dataset(catseg_home):
    """Photos with masks and a training run, all of which a visitor must not see."""
    add_labelled(4)
    with storage.begin() as session:
        run = runs.create_run(session, ModelConfig().to_dict(), TrainConfig().to_dict(), [1, 2], [3], host="a")
        runs.finish_run(session, run.id, "finished")
    return catseg_home


@pytest.mark.parametrize("page", PAGES)
def test_with_sign_in_configured_every_page_shows_only_the_sign_in(shared_dataset, page):
    app = open_page(page, SIGNED_OUT)
    assert not app.exception, app.exception
    assert [button.key for button in app.button] == ["access_sign_in"]
    assert [title.value for title in app.title] == ["catseg"]
    assert not app.get("imgs") and not app.get("arrow_data_frame") and not app.get("dataframe")
    shown = everything_shown(app)
    assert "Sign in to look at it" in shown
    assert "png" not in shown and "Run #" not in shown and "mask" not in shown.lower(), shown
    assert len(app.sidebar.children) == 0  # not even the page menu


def test_the_router_shows_only_the_sign_in_then_the_app_with_the_user_named(shared_dataset):
    app = AppTest.from_file(APP, default_timeout=60)
    app.secrets, app.user = {"auth": AUTH}, SIGNED_OUT
    app.run()  # the first page through the router, as a browser opens the app
    assert not app.exception, app.exception
    assert [button.key for button in app.button] == ["access_sign_in"] and len(app.sidebar.children) == 0
    app = AppTest.from_file(APP, default_timeout=60)  # signed in (AppTest reruns a page without the router)
    app.secrets, app.user = {"auth": AUTH}, ADA
    app.run()
    assert not app.exception, app.exception
    assert "access_sign_in" not in [button.key for button in app.button]
    assert any("Signed in as ada@example.org" in caption.value for caption in app.sidebar.caption)
    assert open_page("pages/photo_gallery.py", ADA).title[0].value == "Photos"


def test_without_sign_in_configured_the_app_is_open_as_before(shared_dataset):
    app = open_page("pages/photo_gallery.py", {}, secrets={})
    assert not app.exception, app.exception
    assert app.title[0].value == "Photos" and "access_sign_in" not in [button.key for button in app.button]


def test_a_saved_mask_carries_its_author_on_the_annotate_page(catseg_home):
    from test_pages_annotate import add_photos, draw, stroke

    photo_id, = add_photos(1)
    app = open_page("pages/labelling.py", ADA)
    assert not app.exception, app.exception
    draw(app, stroke([(60, 60), (200, 150)], width=30))
    app.button(key="annotate_save").click().run()
    assert not app.exception, app.exception
    with storage.begin() as session:
        assert dataset.current_mask_revision(session, photo_id).created_by == "ada@example.org"
    assert any("saved by ada@example.org" in caption.value for caption in app.caption)


def test_a_run_started_on_the_train_page_carries_its_author_and_its_machine(catseg_home, monkeypatch):
    import catseg.train.run_control

    add_labelled(6)
    # The run is recorded as the page records it; no worker process is needed to see who and where.
    monkeypatch.setattr(catseg.train.run_control, "start_run",
                        lambda model_config, train_config, start_from, created_by=None:
                        catseg.train.run_control.plan_run(model_config, train_config, start_from, created_by=created_by))
    monkeypatch.setenv("CATSEG_HOST", "a")
    app = open_page("pages/training.py", ADA)
    app.button(key="train_start").click().run()
    assert not app.exception, app.exception
    with storage.begin() as session:
        run = runs.latest_run(session)
    assert (run.created_by, run.host) == ("ada@example.org", "a")
    monkeypatch.setenv("CATSEG_HOST", "b")  # the same page on another machine says where the run is
    app = open_page("pages/training.py", ADA)
    captions = " ".join(caption.value for caption in app.caption)
    assert "Running on **a**, another machine sharing this dataset" in captions
    assert "started by ada@example.org" in captions


def test_the_command_line_records_the_operating_system_user(tmp_path):
    home = tmp_path / "home"
    imported = run_cli(home, "import", str(write_tutorial_folder(tmp_path / "source", 2)))
    assert imported.returncode == 0, imported.stderr
    code = ("import storage; from storage.models import Photo, MaskRevision\n"
            "with storage.begin() as s: print(sorted({r.created_by for r in s.query(Photo)} | "
            "{r.created_by for r in s.query(MaskRevision)}))")
    listed = subprocess.run([sys.executable, "-c", code], cwd=REPOSITORY_ROOT, capture_output=True, text=True,
                            env={**os.environ, "CATSEG_HOME": str(home), "DATABASE_URL": ""})
    assert listed.stdout.strip() == repr([getpass.getuser()]), listed.stderr


def test_an_open_server_on_the_network_warns_once_that_anyone_can_change_the_data(catseg_home, capfd):
    import team_access

    team_access._warned_about_address = False
    with patch_config_options({"server.address": "0.0.0.0"}):
        open_page("pages/home.py", {}, secrets={})
        open_page("pages/home.py", {}, secrets={})
    warnings = [line for line in capfd.readouterr().err.splitlines() if "anyone who can reach it" in line]
    assert len(warnings) == 1 and "0.0.0.0" in warnings[0]
    team_access._warned_about_address = False
    with patch_config_options({"server.address": "0.0.0.0"}):
        open_page("pages/home.py", SIGNED_OUT)  # sign-in configured: no warning
    with patch_config_options({"server.address": "127.0.0.1"}):
        open_page("pages/home.py", {}, secrets={})  # this machine only: no warning
    assert "anyone who can reach it" not in capfd.readouterr().err


def test_the_readme_command_serves_this_machine_only(tmp_path):
    """`streamlit run app.py`, as the README says (another port, to run beside a user's own server)."""
    port = free_port()
    environment = {**os.environ, "CATSEG_HOME": str(tmp_path / "home")}
    environment.pop("DATABASE_URL", None)
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)],
                              cwd=REPOSITORY_ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    try:
        assert wait_until_healthy(f"http://127.0.0.1:{port}", server), "streamlit did not start"
        listening = [c.laddr for c in psutil.Process(server.pid).net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN]
        assert listening and all(ipaddress.ip_address(address.ip).is_loopback for address in listening), listening
        others = [entry.address for entries in psutil.net_if_addrs().values() for entry in entries
                  if entry.family == socket.AF_INET and not ipaddress.ip_address(entry.address).is_loopback]
        for address in others:  # from a network address of this machine, nothing answers
            with socket.socket() as probe:
                probe.settimeout(2)
                assert probe.connect_ex((address, port)) != 0, f"the app answers on {address}"
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=20)
    assert "Network URL" not in output, output
