"""Dataset acceptance on the real data sets in ../shared/data (run in CI, skipped elsewhere)."""

import numpy as np
import pytest

import storage
from catseg.data.exporting import export_dataset
from catseg.data.importing import import_path
from catseg.data.layouts import parse_yolo_label
from catseg.data.masks import iou, polygons_to_mask
from storage import dataset
from conftest import SHARED_DATA, run_cli

pytestmark = pytest.mark.realdata


def test_seed_cats_cli_import_then_duplicates(tmp_path):
    import json

    home = tmp_path / "home"
    first = run_cli(home, "import", str(SHARED_DATA / "seed-cats"), "--json")
    assert first.returncode == 0, first.stderr
    stats = json.loads(run_cli(home, "stats", "--json").stdout)
    assert (stats["images"], stats["labelled"]) == (81, 81)
    again = json.loads(run_cli(home, "import", str(SHARED_DATA / "seed-cats"), "--json").stdout.splitlines()[-1])
    assert (again["added"], again["duplicates"]) == (0, 81)


def test_feral_valid_masks_match_the_label_polygons(catseg_home):
    folder = SHARED_DATA / "feral-cats" / "valid"
    report = import_path(folder)
    # 195 files; two pairs of them are byte-identical photos (with different labels), so
    # the second of each pair is reported as a duplicate rather than stored twice.
    assert report.added + len(report.duplicates) == 195 and report.rejected == []
    assert report.added == 193
    with storage.begin() as session:
        summaries = dataset.list_photos(session, "all", limit=1000)
        for summary in summaries:
            stem = summary.original_name.rsplit(".", 1)[0]
            polygons = parse_yolo_label((folder / "labels" / f"{stem}.txt").read_text(), stem)
            expected = polygons_to_mask(polygons, summary.width, summary.height)
            stored = dataset.load_mask(session, summary.id)
            # The union of the instances' fills, pixel-exact at the photo's resolution.
            np.testing.assert_array_equal(stored, expected, err_msg=summary.original_name)


def test_feral_valid_export_then_import_keeps_every_mask(catseg_home, tmp_path, monkeypatch):
    import_path(SHARED_DATA / "feral-cats" / "valid")
    with storage.begin() as session:
        before = {s.original_name: dataset.load_mask(session, s.id) for s in dataset.list_photos(session, limit=1000)}
    for layout in ("yolo", "coco", "tutorial"):
        monkeypatch.setenv("CATSEG_HOME", str(catseg_home))
        export_dataset(tmp_path / layout, layout)
        storage.dispose_all()
        monkeypatch.setenv("CATSEG_HOME", str(tmp_path / f"fresh-{layout}"))
        assert import_path(tmp_path / layout).added_labelled == len(before) == 193
        with storage.begin() as session:
            after = {s.original_name: dataset.load_mask(session, s.id) for s in dataset.list_photos(session, limit=1000)}
        storage.dispose_all()
        for name, mask in before.items():
            # Exported photos are renamed "<id>_<original name>"; the extension may change.
            stem = name.rsplit(".", 1)[0]
            match = next(value for key, value in after.items() if key.split("_", 1)[1].rsplit(".", 1)[0] == stem)
            # YOLO polygons follow pixel centres, so edges may move by a pixel; the others are exact.
            assert iou(match, mask) >= (0.99 if layout == "yolo" else 1.0), (layout, name)


def test_seed_cats_export_round_trips(catseg_home, tmp_path, monkeypatch):
    import_path(SHARED_DATA / "seed-cats")
    with storage.begin() as session:
        before = {s.original_name: dataset.load_mask(session, s.id) for s in dataset.list_photos(session, limit=100)}
    export_dataset(tmp_path / "tutorial", "tutorial")
    export_dataset(tmp_path / "yolo", "yolo")
    for layout in ("tutorial", "yolo"):
        storage.dispose_all()
        monkeypatch.setenv("CATSEG_HOME", str(tmp_path / f"fresh-{layout}"))
        assert import_path(tmp_path / layout).added_labelled == 81
        with storage.begin() as session:
            after = {s.original_name.split("_", 1)[1].rsplit(".", 1)[0]: dataset.load_mask(session, s.id)
                     for s in dataset.list_photos(session, limit=100)}
        scores = [iou(after[name.rsplit(".", 1)[0]], mask) for name, mask in before.items()]
        if layout == "tutorial":
            assert all(np.array_equal(after[n.rsplit(".", 1)[0]], m) for n, m in before.items())
        else:
            assert np.mean(scores) >= 0.95
