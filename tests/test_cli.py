"""The CLI as a user runs it: exit codes, JSON, one-line errors without tracebacks."""

import json

from conftest import drawn_cat, encode, run_cli


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
