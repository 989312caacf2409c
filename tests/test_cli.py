"""The CLI as a user runs it: exit codes, JSON, one-line errors without tracebacks."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import drawn_cat, encode, run_cli, run_python_without_tensorflow


def test_import_stats_export(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for index in range(2):
        (folder / f"{index}.png").write_bytes(encode(drawn_cat(seed=index)[0]))
    home = tmp_path / "home"
    imported = run_cli(home, "import", str(folder), "--json")
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout.strip().splitlines()[-1])["added"] == 2
    stats = run_cli(home, "stats", "--json")
    assert json.loads(stats.stdout) | {"data_home": None} == {"images": 2, "labelled": 0, "unlabelled": 2, "data_home": None}
    exported = run_cli(home, "export", str(tmp_path / "out"), "--format", "yolo")
    assert exported.returncode == 0 and "Exported 0 labelled photos" in exported.stdout


def test_failures_are_one_line_without_traceback(tmp_path):
    result = run_cli(tmp_path / "home", "import", str(tmp_path / "nowhere"))
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert "no such folder" in result.stderr
    not_zip = tmp_path / "x.zip"
    not_zip.write_text("nope")
    result = run_cli(tmp_path / "home", "import", str(not_zip))
    assert result.returncode == 1 and "not a readable zip" in result.stderr and "Traceback" not in result.stderr


def test_help_lists_every_command_and_light_commands_never_load_tensorflow(tmp_path):
    """`--help` and the dataset commands start fast: TensorFlow loads only for a command that needs it."""
    code = (
        "import contextlib, io\n"
        "from catseg.cli import main\n"
        "help_text = io.StringIO()\n"
        "with contextlib.redirect_stdout(help_text), contextlib.suppress(SystemExit):\n"
        "    main(['--help'])\n"
        "assert main(['stats', '--json']) == 0\n"
        "print(help_text.getvalue())\n"
    )
    result = run_python_without_tensorflow(tmp_path / "home", code)
    assert result.returncode == 0, result.stderr[-2000:]
    for command in ("import", "export", "stats", "train", "predict", "splash", "evaluate", "check"):
        assert f"    {command} " in result.stdout, command


def test_the_installed_command_works_from_any_folder(tmp_path):
    """`pip install -e .` (the README's start command) puts `catseg` beside the interpreter."""
    command = Path(sys.executable).parent / "catseg"
    if not command.exists():
        pytest.skip("catseg is not installed in this environment (pip install -e .)")
    photos = tmp_path / "Pictures" / "cats"
    photos.mkdir(parents=True)
    (photos / "ginger.png").write_bytes(encode(drawn_cat(seed=3)[0]))
    environment = {**os.environ, "CATSEG_HOME": str(tmp_path / "home")}
    environment.pop("DATABASE_URL", None)
    elsewhere = tmp_path / "somewhere-else"
    elsewhere.mkdir()
    imported = subprocess.run([str(command), "import", str(photos), "--json"], cwd=elsewhere, env=environment,
                              capture_output=True, text=True, timeout=120)
    assert imported.returncode == 0, imported.stderr[-2000:]
    stats = subprocess.run([str(command), "stats", "--json"], cwd=elsewhere, env=environment,
                           capture_output=True, text=True, timeout=120)
    assert stats.returncode == 0, stats.stderr[-2000:]
    assert json.loads(stats.stdout.strip().splitlines()[-1])["images"] == 1
