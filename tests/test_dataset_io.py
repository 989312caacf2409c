"""Import (tutorial, YOLO, plain, zip, bad files) and export round trips, on drawn data.

Each test using `catseg_home` runs on SQLite and on PostgreSQL (see tests/conftest.py).
"""

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

import storage
from catseg.data.exporting import export_dataset
from catseg.data.importing import import_path
from catseg.data.masks import iou, mask_to_polygons, polygons_to_mask
from storage import dataset
from conftest import drawn_cat, encode, run_cli

pytestmark = pytest.mark.both_databases


def make_tutorial_folder(root, count=4):
    (root / "input").mkdir(parents=True)
    (root / "mask").mkdir()
    masks = {}
    for index in range(count):
        photo, mask = drawn_cat(100 + index * 7, 80 + index * 3, seed=index)
        (root / "input" / f"cat.{index}.jpg").write_bytes(encode(photo, "JPEG", quality=95))
        (root / "mask" / f"mask_cat.{index}.jpg").write_bytes(encode(mask, "JPEG", quality=90))
        masks[f"cat.{index}.jpg"] = mask
    (root / "README.md").write_text("not a photo")
    return masks


def make_yolo_folder(root, count=3):
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    polygons = {}
    for index in range(count):
        photo, _ = drawn_cat(96, 96, seed=10 + index)
        (root / "images" / f"img{index}.jpg").write_bytes(encode(photo, "JPEG"))
        shapes = [np.array([[0.1, 0.1], [0.5, 0.12], [0.4, 0.6]]), np.array([[0.6, 0.6], [0.9, 0.6], [0.9, 0.95], [0.6, 0.9]])]
        lines = ["0 " + " ".join(f"{v:.5f}" for v in shape.reshape(-1)) for shape in shapes[: 1 + index % 2]]
        (root / "labels" / f"img{index}.txt").write_text("\n".join(lines) + "\n")
        polygons[f"img{index}.jpg"] = shapes[: 1 + index % 2]
    return polygons


def stored_masks_by_name():
    with storage.begin() as session:
        return {
            summary.original_name: dataset.load_mask(session, summary.id)
            for summary in dataset.list_photos(session, "all", limit=10_000)
        }


def test_tutorial_layout_import_thresholds_jpeg_masks(catseg_home, tmp_path):
    masks = make_tutorial_folder(tmp_path / "seed")
    report = import_path(tmp_path / "seed")
    assert (report.detected_format, report.added, report.added_labelled) == ("tutorial", 4, 4)
    assert report.skipped == [("README.md", "not a photo format: .md")] and report.rejected == []
    assert report.files_seen == 5  # four photo + mask pairs and the README
    stored = stored_masks_by_name()
    for name, mask in masks.items():
        assert set(np.unique(stored[name])) <= {0, 255}
        assert iou(stored[name], mask) > 0.98
    again = import_path(tmp_path / "seed")
    assert again.added == 0 and len(again.duplicates) == 4


def test_yolo_import_unions_instances_at_full_resolution(catseg_home, tmp_path):
    polygons = make_yolo_folder(tmp_path / "yolo")
    report = import_path(tmp_path / "yolo")
    assert (report.detected_format, report.added, report.added_labelled) == ("yolo", 3, 3)
    stored = stored_masks_by_name()
    for name, shapes in polygons.items():
        assert stored[name].shape == (96, 96)
        assert iou(stored[name], polygons_to_mask(shapes, 96, 96)) == 1.0
    assert stored["img1.jpg"][int(0.8 * 96), int(0.75 * 96)] == 255  # the second instance is in


def test_plain_folder_imports_unlabelled_photos(catseg_home, tmp_path):
    (tmp_path / "plain" / "sub").mkdir(parents=True)
    for index in range(3):
        (tmp_path / "plain" / "sub" / f"p{index}.png").write_bytes(encode(drawn_cat(seed=index)[0]))
    report = import_path(tmp_path / "plain")
    assert (report.detected_format, report.added, report.added_labelled) == ("images", 3, 0)


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (40, 30), colour) for colour in ("red", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buffer.getvalue()


def messy_yolo_files() -> tuple[dict[str, bytes], dict[str, str]]:
    """A YOLO folder with everything an import can meet: {file: bytes}, {file: expected outcome}."""
    good = [encode(drawn_cat(96, 80, seed=20 + index)[0], "JPEG") for index in range(3)]
    label = b"0 0.1 0.1 0.5 0.1 0.4 0.6\n"
    files = {
        "images/a.jpg": good[0], "labels/a.txt": label,
        "images/b.jpg": good[1], "labels/b.txt": label,
        "images/unlabelled.jpg": good[2],
        "images/copy_of_a.jpg": good[0],
        "images/drawing.svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        "images/anim.gif": animated_gif(),
        "images/.DS_Store": b"\0\0\0\1Bud1",
        ".hidden/photo.png": encode(drawn_cat(seed=30)[0]),
        "notes.txt": b"shot in the garden",
        "images/corrupt.jpg": good[1][:200],
        "labels/ghost.txt": label,
        "data.yaml": b"nc: 1\nnames: ['cat']\n",
    }
    expected = {
        "images/a.jpg": "added", "images/b.jpg": "added", "images/unlabelled.jpg": "added",
        "images/copy_of_a.jpg": "duplicate", "images/corrupt.jpg": "rejected",
        "images/drawing.svg": "skipped", "images/anim.gif": "skipped", "images/.DS_Store": "skipped",
        ".hidden/photo.png": "skipped", "notes.txt": "skipped", "labels/ghost.txt": "skipped",
        "data.yaml": "skipped",
    }
    return files, expected


def outcomes(report) -> dict[str, list[str]]:
    """{file: [outcome, ...]}: every file should have exactly one."""
    named: dict[str, list[str]] = {}
    lines = ([(name, "added") for name, _ in report.added_files] + [(name, "duplicate") for name in report.duplicates]
             + [(name, "rejected") for name, _ in report.rejected] + [(name, "skipped") for name, _ in report.skipped])
    for name, outcome in lines:
        named.setdefault(name, []).append(outcome)
    return named


def assert_accounted(report) -> None:
    total = report.added + len(report.duplicates) + len(report.rejected) + len(report.skipped)
    assert total == report.files_seen
    assert all(len(lines) == 1 for lines in outcomes(report).values()), outcomes(report)


def test_every_file_of_a_folder_ends_in_exactly_one_line(catseg_home, tmp_path):
    files, expected = messy_yolo_files()
    for name, data in files.items():
        (tmp_path / "messy" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "messy" / name).write_bytes(data)
    report = import_path(tmp_path / "messy")
    assert report.detected_format == "yolo"
    assert_accounted(report)
    # 14 files on disk; each label read with its photo counts with it.
    assert report.files_seen == 12
    assert {name: lines[0] for name, lines in outcomes(report).items()} == expected
    skipped = dict(report.skipped)
    assert skipped["images/drawing.svg"] == "not a photo format: .svg"
    assert skipped["images/anim.gif"].startswith("animated GIF")
    assert skipped["images/.DS_Store"] == skipped[".hidden/photo.png"] == "hidden file"
    assert skipped["notes.txt"] == "not a photo format: .txt"
    assert skipped["labels/ghost.txt"] == "label file without a photo"
    assert dict(report.added_files) == {"images/a.jpg": "", "images/b.jpg": "",
                                        "images/unlabelled.jpg": "no label file: added without a mask"}
    assert report.added_labelled == 2
    assert "images/corrupt.jpg" in dict(report.rejected)["images/corrupt.jpg"]


def test_every_member_of_a_zip_ends_in_exactly_one_line(catseg_home, tmp_path):
    files, expected = messy_yolo_files()
    files["__MACOSX/images/._a.jpg"] = b"\0\5\26\7"
    files["inner.zip"] = zip_bytes({"x.png": encode(drawn_cat(seed=40)[0])})
    files["../escape.png"] = encode(drawn_cat(seed=41)[0])
    (tmp_path / "messy.zip").write_bytes(zip_bytes({f"messy/{name}": data for name, data in files.items()
                                                    if not name.startswith("..")} | {"../escape.png": files["../escape.png"]}))
    report = import_path(tmp_path / "messy.zip")
    assert_accounted(report)
    assert report.files_seen == 15  # the 12 above, the macOS copy, the inner zip's photo, the unsafe member
    named = {name: lines[0] for name, lines in outcomes(report).items()}
    assert named == {f"messy.zip/messy/{name}": outcome for name, outcome in expected.items()} | {
        "messy.zip/messy/__MACOSX/images/._a.jpg": "skipped",
        "messy.zip/messy/inner.zip/x.png": "added",
        "messy.zip/../escape.png": "rejected",
    }
    assert dict(report.skipped)["messy.zip/messy/__MACOSX/images/._a.jpg"].startswith("macOS metadata")


def test_a_folder_with_zips_counts_their_members(catseg_home, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "loose.png").write_bytes(encode(drawn_cat(seed=50)[0]))
    (folder / "cats.zip").write_bytes(zip_bytes({
        "one.png": encode(drawn_cat(seed=51)[0]), "drawing.svg": b"<svg/>", ".DS_Store": b"x",
        "deeper.zip": zip_bytes({"two.png": encode(drawn_cat(seed=52)[0])}),
    }))
    (folder / "broken.zip").write_bytes(b"not a zip at all")
    report = import_path(folder)
    assert_accounted(report)
    # loose.png, four members of cats.zip (the zip in it is not opened), and broken.zip itself
    assert report.files_seen == 6
    assert set(outcomes(report)) == {"loose.png", "cats.zip/one.png", "cats.zip/drawing.svg",
                                     "cats.zip/.DS_Store", "cats.zip/deeper.zip", "broken.zip"}
    assert "not a readable zip" in dict(report.rejected)["broken.zip"]
    assert "zip inside a zip" in dict(report.rejected)["cats.zip/deeper.zip"]


def test_tutorial_masks_without_photos_are_skipped(catseg_home, tmp_path):
    make_tutorial_folder(tmp_path / "seed", count=2)
    (tmp_path / "seed" / "mask" / "mask_orphan.png").write_bytes(encode(drawn_cat(seed=9)[1]))
    (tmp_path / "seed" / "input" / "no_mask.png").write_bytes(encode(drawn_cat(seed=8)[0]))
    report = import_path(tmp_path / "seed")
    assert_accounted(report)
    assert dict(report.skipped)["mask/mask_orphan.png"] == "mask without a photo"
    assert dict(report.added_files)["input/no_mask.png"] == "no mask file: added without a mask"
    assert (report.added, report.added_labelled) == (3, 2)


def test_cli_prints_every_file_that_was_not_simply_added(tmp_path):
    files, expected = messy_yolo_files()
    for name, data in files.items():
        (tmp_path / "messy" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "messy" / name).write_bytes(data)
    text = run_cli(tmp_path / "home", "import", str(tmp_path / "messy"))
    assert text.returncode == 0, text.stderr
    lines = text.stdout.strip().splitlines()
    assert lines[0].startswith("yolo layout: 12 files: added 3 photos (2 with masks), 1 duplicates, 1 rejected, 7 skipped")
    for name, outcome in expected.items():
        if outcome != "added":
            assert sum(name in line for line in lines[1:]) == 1, name
    assert "  skipped: images/anim.gif (animated GIF" in text.stdout
    assert "  added: images/unlabelled.jpg (no label file: added without a mask)" in text.stdout

    again = run_cli(tmp_path / "home", "import", str(tmp_path / "messy"), "--json")
    result = json.loads(again.stdout.strip().splitlines()[-1])
    assert result["files_seen"] == 12
    assert result["added"] + result["duplicates"] + len(result["rejected"]) + len(result["skipped"]) == 12
    assert sorted(result["duplicate_files"]) == ["images/a.jpg", "images/b.jpg", "images/copy_of_a.jpg",
                                                 "images/unlabelled.jpg"]
    assert {entry["file"] for entry in result["skipped"]} == {name for name, outcome in expected.items()
                                                              if outcome == "skipped"}


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_zip_upload_of_tutorial_layout(catseg_home, tmp_path):
    masks = make_tutorial_folder(tmp_path / "seed", count=2)
    entries = {f"seed/{p.relative_to(tmp_path / 'seed').as_posix()}": p.read_bytes()
               for p in (tmp_path / "seed").rglob("*") if p.is_file()}
    report = import_path(zip_bytes(entries), label="cats.zip")
    assert (report.detected_format, report.added, report.added_labelled) == ("tutorial", 2, 2)
    assert set(stored_masks_by_name()) == set(masks)


def test_a_folder_of_bad_files_rejects_each_with_its_own_message(catseg_home, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    good, _ = drawn_cat()
    jpeg = encode(good, "JPEG")
    (folder / "good.jpg").write_bytes(jpeg)
    (folder / "zero.jpg").write_bytes(b"")
    (folder / "text.jpg").write_text("hello, I am text")
    (folder / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    buffer = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buffer, "PNG")
    (folder / "huge.png").write_bytes(buffer.getvalue())
    other, _ = drawn_cat(seed=5)
    (folder / "slip.zip").write_bytes(zip_bytes({"../escape.png": encode(other), "inside.png": encode(drawn_cat(seed=6)[0])}))
    (folder / "bomb.zip").write_bytes(zip_bytes({"bomb.png": b"\0" * (50 * 1024 * 1024)}))

    report = import_path(folder)
    reasons = dict(report.rejected)
    assert report.added == 2  # good.jpg and slip.zip/inside.png
    assert "empty" in reasons["zero.jpg"]
    assert "not a photo" in reasons["text.jpg"]
    assert "damaged" in reasons["truncated.jpg"]
    assert "megapixels" in reasons["huge.png"]
    assert "unsafe path" in reasons["slip.zip/../escape.png"]
    assert "zip bomb" in reasons["bomb.zip/bomb.png"]
    assert all(name in reason for name, reason in report.rejected)
    assert not (tmp_path / "escape.png").exists()
    with storage.begin() as session:
        assert dataset.counts(session).images == 2
    stored_files = [p for p in (catseg_home / "photos").rglob("*") if p.is_file()]
    assert len(stored_files) == 2


def test_unknown_path_is_a_clear_error(catseg_home, tmp_path):
    with pytest.raises(ValueError, match="no such folder"):
        import_path(tmp_path / "missing")
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(ValueError, match="expected a folder or a .zip"):
        import_path(tmp_path / "a.txt")


def test_malformed_yolo_label_rejects_only_that_photo(catseg_home, tmp_path):
    make_yolo_folder(tmp_path / "yolo", count=2)
    (tmp_path / "yolo" / "labels" / "img0.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    report = import_path(tmp_path / "yolo")
    assert report.added == 1
    assert "detection box" in dict(report.rejected)["images/img0.jpg"]


def test_tutorial_export_then_import_gives_back_every_mask_exactly(catseg_home, switch_catseg_home, tmp_path):
    make_tutorial_folder(tmp_path / "seed", count=3)
    import_path(tmp_path / "seed")
    before = sorted((m.tobytes() for m in stored_masks_by_name().values()))
    result = export_dataset(tmp_path / "out", "tutorial")
    assert result["exported"] == 3
    switch_catseg_home(tmp_path / "fresh")
    report = import_path(tmp_path / "out")
    assert report.added_labelled == 3
    after = sorted((m.tobytes() for m in stored_masks_by_name().values()))
    assert before == after


def test_yolo_export_then_import_keeps_masks(catseg_home, switch_catseg_home, tmp_path):
    make_tutorial_folder(tmp_path / "seed", count=3)
    import_path(tmp_path / "seed")
    before = {name.split(".")[1]: mask for name, mask in stored_masks_by_name().items()}
    export_dataset(tmp_path / "out", "yolo")
    switch_catseg_home(tmp_path / "fresh")
    assert import_path(tmp_path / "out").added_labelled == 3
    after = {name.split("_cat.")[1].split(".")[0]: mask for name, mask in stored_masks_by_name().items()}
    scores = [iou(after[key], before[key]) for key in before]
    assert min(scores) >= 0.95


def test_export_refuses_a_non_empty_folder(catseg_home, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        export_dataset(tmp_path / "out")


def test_polygon_round_trip_of_odd_shapes():
    mask = np.zeros((77, 131), dtype=np.uint8)
    mask[10:40, 20:90] = 255
    mask[50:70, 100:125] = 255
    polygons = mask_to_polygons(mask)
    assert len(polygons) == 2
    assert iou(polygons_to_mask(polygons, 131, 77), mask) > 0.97


def test_polygons_keep_holes_so_a_yolo_export_of_a_ring_comes_back_a_ring():
    import cv2

    mask = np.zeros((90, 120), dtype=np.uint8)
    cv2.circle(mask, (60, 45), 40, 255, -1)
    cv2.circle(mask, (60, 45), 15, 0, -1)  # the hole
    cv2.circle(mask, (30, 30), 5, 0, -1)  # a second one
    polygons = mask_to_polygons(mask)
    assert len(polygons) == 1  # one part: the holes are joined to its outline
    back = polygons_to_mask(polygons, 120, 90)
    assert back[45, 60] == 0 and back[30, 30] == 0  # still holes
    assert iou(back, mask) > 0.99


def test_overlapping_polygons_fill_as_their_union():
    """Two cats whose outlines overlap: the overlap is cat, not a hole (fillPoly's even-odd rule)."""
    first = np.array([[0.1, 0.1], [0.6, 0.1], [0.6, 0.6], [0.1, 0.6]])
    second = np.array([[0.4, 0.4], [0.9, 0.4], [0.9, 0.9], [0.4, 0.9]])
    mask = polygons_to_mask([first, second], 100, 100)
    union = np.maximum(polygons_to_mask([first], 100, 100), polygons_to_mask([second], 100, 100))
    np.testing.assert_array_equal(mask, union)
    assert mask[50, 50] == 255  # the overlap
