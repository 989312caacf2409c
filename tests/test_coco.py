"""COCO: export loads in pycocotools bit for bit, pycocotools-made files import exactly, bad files are refused."""

import io
import json
import zipfile

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

import storage
from catseg.data import intake
from catseg.data.exporting import export_dataset
from catseg.data.importing import import_path, import_uploads
from catseg.data.layouts import detect_format
from storage import dataset
from conftest import SHARED_DATA, drawn_cat, encode, run_cli

pytestmark = pytest.mark.both_databases


def stored_masks_by_name() -> dict[str, np.ndarray | None]:
    with storage.begin() as session:
        return {
            summary.original_name: dataset.load_mask(session, summary.id)
            for summary in dataset.list_photos(session, "all", limit=10_000)
        }


def photo_count() -> int:
    with storage.begin() as session:
        return dataset.counts(session).images


def union_of_annotations(coco: COCO, image_id) -> np.ndarray:
    """What pycocotools says an image's cat mask is: the union of annToMask over its annotations."""
    image = coco.imgs[image_id]
    union = np.zeros((image["height"], image["width"]), dtype=bool)
    for annotation in coco.loadAnns(coco.getAnnIds(imgIds=[image_id])):
        union |= coco.annToMask(annotation) > 0
    return union


def uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE of a mask: run lengths down the columns, starting with background."""
    pixels = (mask > 0).astype(np.uint8).flatten(order="F")
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(pixels)) + 1, [pixels.size]])
    counts = np.diff(bounds).tolist()
    return {"size": list(mask.shape), "counts": ([0] if pixels[0] else []) + counts}


def compressed_rle(mask: np.ndarray) -> dict:
    encoded = mask_utils.encode(np.asfortranarray(mask > 0, dtype=np.uint8))
    return {"size": encoded["size"], "counts": encoded["counts"].decode("ascii")}


def ring_mask(width=90, height=70) -> np.ndarray:
    """A mask with a hole: polygons would lose it, RLE keeps it."""
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[10:60, 15:75] = 255
    mask[25:45, 35:55] = 0
    return mask


def write_folder(root, photos: dict[str, np.ndarray], document: dict, json_name="annotations.json") -> None:
    (root / "images").mkdir(parents=True)
    for name, pixels in photos.items():
        (root / "images" / name).write_bytes(encode(pixels))
    (root / json_name).write_text(json.dumps(document))


def pycocotools_made_folder(root) -> dict:
    """Six photos: masks as compressed RLE, uncompressed RLE, polygons, overlapping annotations, a dog, nothing."""
    photos = {f"p{index}.png": drawn_cat(96, 72, seed=index)[0] for index in range(1, 7)}
    first, second = drawn_cat(96, 72, seed=10)[1], drawn_cat(96, 72, seed=11)[1]
    assert mask_utils.decode(mask_utils.frPyObjects(uncompressed_rle(first), 72, 96)).tolist() == (first > 0).tolist()
    two_polygons = [[10, 10, 50, 12, 40, 50], [30, 20, 80, 20, 80, 65, 30, 60]]  # overlapping: union, no hole
    annotations = [
        {"image_id": 1, "category_id": 3, "segmentation": compressed_rle(first)},
        {"image_id": 2, "category_id": 3, "segmentation": uncompressed_rle(second), "iscrowd": 1},
        {"image_id": 3, "category_id": 3, "segmentation": two_polygons},
        {"image_id": 4, "category_id": 3, "segmentation": [[5, 5, 60, 5, 60, 40, 5, 40]]},
        {"image_id": 4, "category_id": 3, "segmentation": compressed_rle(second)},
        {"image_id": 4, "category_id": 7, "segmentation": [[0, 60, 95, 60, 95, 71, 0, 71]]},  # a dog: not cat
        {"image_id": 5, "category_id": 7, "segmentation": compressed_rle(first)},  # only a dog: no cat
    ]
    document = {
        "images": [{"id": index, "file_name": f"p{index}.png", "width": 96, "height": 72} for index in range(1, 7)],
        "annotations": [dict(annotation, id=number, bbox=[0, 0, 1, 1], area=1) for number, annotation in
                        enumerate(annotations, start=1)],
        "categories": [{"id": 3, "name": "Cat"}, {"id": 7, "name": "dog"}],
    }
    write_folder(root, photos, document)
    return document


def test_export_loads_in_pycocotools_with_every_mask_exact(catseg_home, tmp_path):
    drawn = {f"cat{index}.png": drawn_cat(80 + index * 9, 60 + index * 5, seed=index) for index in range(3)}
    with storage.begin() as session:
        for name, (photo, mask) in drawn.items():
            intake.add_photo(session, encode(photo), name, mask=mask)
        intake.add_photo(session, encode(drawn_cat(90, 70, seed=7)[0]), "ring.png", mask=ring_mask())
        intake.add_photo(session, encode(drawn_cat(64, 48, seed=8)[0]), "no_cat.png", mask=np.zeros((48, 64)))
        intake.add_photo(session, encode(drawn_cat(seed=9)[0]), "unlabelled.png")
    result = export_dataset(tmp_path / "out", "coco")
    assert (result["exported"], result["skipped_unlabelled"]) == (5, 1)

    coco = COCO(str(tmp_path / "out" / "annotations.json"))
    assert coco.loadCats(coco.getCatIds()) == [{"id": 1, "name": "cat", "supercategory": "animal"}]
    assert len(coco.imgs) == len(coco.anns) == 5
    assert all(annotation["iscrowd"] == 0 and annotation["category_id"] == 1 for annotation in coco.anns.values())
    stored = stored_masks_by_name()
    for image_id, image in coco.imgs.items():
        photo = (tmp_path / "out" / "images" / image["file_name"])
        height, width = stored[image["file_name"].split("_", 1)[1]].shape
        assert (image["width"], image["height"]) == (width, height)
        assert photo.is_file()
        expected = stored[image["file_name"].split("_", 1)[1]] > 0
        np.testing.assert_array_equal(union_of_annotations(coco, image_id), expected)


def test_a_pycocotools_made_file_imports_exactly(catseg_home, tmp_path):
    pycocotools_made_folder(tmp_path / "coco")
    report = import_path(tmp_path / "coco")
    assert report.detected_format == "coco" and report.rejected == []
    assert report.annotation_files == ["annotations.json"]
    assert (report.added, report.added_labelled) == (6, 6)
    assert report.added + len(report.duplicates) + len(report.rejected) + len(report.skipped) == report.files_seen

    reference = COCO(str(tmp_path / "coco" / "annotations.json"))
    cat = reference.getCatIds(catNms=["Cat"])
    stored = stored_masks_by_name()
    for image_id, image in reference.imgs.items():
        expected = np.zeros((72, 96), dtype=bool)
        for annotation in reference.loadAnns(reference.getAnnIds(imgIds=[image_id], catIds=cat)):
            expected |= reference.annToMask(annotation) > 0
        np.testing.assert_array_equal(stored[image["file_name"]] > 0, expected, err_msg=image["file_name"])
    assert not stored["p5.png"].any() and not stored["p6.png"].any()  # only a dog; nothing annotated
    polygons = stored["p3.png"]
    assert polygons[20, 42] == 255  # where the two polygons overlap: cat, not a hole


def test_without_a_cat_category_every_category_is_read(catseg_home, tmp_path):
    photo, mask = drawn_cat(64, 48, seed=1)
    other = np.zeros_like(mask)
    other[:10, :] = 255
    document = {
        "images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 48}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": compressed_rle(mask)},
                        {"id": 2, "image_id": 1, "category_id": 2, "segmentation": uncompressed_rle(other)}],
        "categories": [{"id": 1, "name": "kitten"}, {"id": 2, "name": "tabby"}],
    }
    write_folder(tmp_path / "coco", {"a.png": photo}, document)
    import_path(tmp_path / "coco")
    np.testing.assert_array_equal(stored_masks_by_name()["a.png"], np.maximum(mask, other))


def corrupt(document: dict, case: str) -> bytes:
    """The folder's annotations.json spoiled in one way."""
    if case == "not json":
        return b'{"images": [1, 2'
    document = json.loads(json.dumps(document))
    if case == "no images key":
        del document["images"]
    elif case == "missing image":
        document["images"].append({"id": 99, "file_name": "gone.png", "width": 96, "height": 72})
    elif case == "wrong size":
        document["images"][5]["width"] = 100  # the photo without annotations: only its file disagrees
    elif case == "unknown image id":
        document["annotations"][0]["image_id"] = 42
    elif case == "unknown category":
        document["annotations"][0]["category_id"] = 5
    elif case == "rle of another size":
        document["annotations"][0]["segmentation"]["size"] = [10, 10]
    elif case == "short rle counts":
        document["annotations"][1]["segmentation"]["counts"] = [3, 4]
    elif case == "short compressed rle":
        document["annotations"][0]["segmentation"]["counts"] = compressed_rle(np.ones((2, 2)))["counts"]
    elif case == "polygon of two points":
        document["annotations"][2]["segmentation"] = [[1, 1, 5, 5]]
    return json.dumps(document).encode()


BAD_FILES = {
    "not json": "not valid JSON",
    "no images key": 'no "images" list',
    "missing image": "1 of its images are missing (gone.png)",
    "wrong size": "image 6 is 100x72 in the JSON but images/p6.png is 96x72",
    "unknown image id": 'annotation 1 names image id 42, which is not in "images"',
    "unknown category": 'annotation 1 has category 5, which is not in "categories"',
    "rle of another size": "annotation 1: its RLE mask is 10x10 but image 1 is 96x72",
    "short rle counts": "annotation 2: its RLE counts cover 7 pixels, not the 6912",
    "short compressed rle": "annotation 1: its compressed RLE does not cover the 96x72 pixels",
    "polygon of two points": "annotation 3: a polygon needs at least 3 x,y pairs",
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_file_is_refused_by_name_and_nothing_is_added(catseg_home, tmp_path, case):
    document = pycocotools_made_folder(tmp_path / "coco")
    (tmp_path / "coco" / "annotations.json").write_bytes(corrupt(document, case))
    with pytest.raises(ValueError) as refused:
        import_path(tmp_path / "coco", "coco")
    message = str(refused.value)
    assert message.startswith("annotations.json: ") and BAD_FILES[case] in message
    assert message.count("\n") == 0
    assert photo_count() == 0
    assert not (catseg_home / "photos").exists() or not any((catseg_home / "photos").rglob("*.*"))


def test_a_bad_file_in_the_cli_is_one_line_and_adds_nothing(tmp_path):
    document = pycocotools_made_folder(tmp_path / "coco")
    (tmp_path / "coco" / "annotations.json").write_bytes(corrupt(document, "unknown image id"))
    result = run_cli(tmp_path / "home", "import", str(tmp_path / "coco"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == ('error: annotations.json: annotation 1 names image id 42, '
                                     'which is not in "images".')
    stats = run_cli(tmp_path / "home", "stats", "--json")
    assert json.loads(stats.stdout)["images"] == 0


def zip_of(folder) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, f"{folder.name}/{path.relative_to(folder).as_posix()}")
    return buffer.getvalue()


def test_a_coco_zip_imports_and_a_bad_one_is_rejected_whole(catseg_home, tmp_path):
    pycocotools_made_folder(tmp_path / "coco")
    report = import_path(zip_of(tmp_path / "coco"), label="coco.zip")
    assert (report.detected_format, report.added, report.added_labelled) == ("coco", 6, 6)
    assert report.annotation_files == ["coco.zip/coco/annotations.json"]

    document = pycocotools_made_folder(tmp_path / "bad")
    (tmp_path / "bad" / "annotations.json").write_bytes(corrupt(document, "missing image"))
    loose = encode(drawn_cat(seed=30)[0])
    uploads = import_uploads([("bad.zip", zip_of(tmp_path / "bad")), ("loose.png", loose)])
    assert uploads.added == 1 and photo_count() == 7
    assert uploads.files_seen == 2 and [name for name, _ in uploads.rejected] == ["bad.zip"]
    assert "bad.zip/bad/annotations.json: 1 of its images are missing (gone.png)" in uploads.rejected[0][1]


def test_detect_format_picks_coco():
    assert detect_format(["annotations.json", "images/a.jpg"]) == "coco"
    assert detect_format(["train/_annotations.coco.json", "train/a.jpg", "README.roboflow.txt"]) == "coco"
    assert detect_format(["annotations/instances_val2017.json", "val2017/000001.jpg"]) == "coco"
    assert detect_format(["metadata.json", "a.jpg"]) == "images"
    assert detect_format(["images/a.jpg", "labels/a.txt", "annotations.json"]) == "yolo"
    assert detect_format([".cache/annotations.json", "a.jpg"]) == "images"


def test_the_layout_coco_ships_in_imports(catseg_home, tmp_path):
    """annotations/instances_*.json beside a val2017/ folder: file names found where they are."""
    root = tmp_path / "coco2017"
    (root / "annotations").mkdir(parents=True)
    (root / "val2017").mkdir()
    photo, mask = drawn_cat(64, 48, seed=3)
    (root / "val2017" / "000001.png").write_bytes(encode(photo))
    document = {"images": [{"id": 1, "file_name": "000001.png", "width": 64, "height": 48}],
                "annotations": [{"id": 1, "image_id": 1, "category_id": 17, "segmentation": compressed_rle(mask)}],
                "categories": [{"id": 17, "name": "cat"}]}
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps(document))
    report = import_path(root)
    assert (report.detected_format, report.added_labelled) == ("coco", 1)
    np.testing.assert_array_equal(stored_masks_by_name()["000001.png"], mask)


def test_cli_export_as_coco(tmp_path):
    folder = tmp_path / "photos"
    (folder / "input").mkdir(parents=True)
    (folder / "mask").mkdir()
    photo, mask = drawn_cat(seed=4)
    (folder / "input" / "a.png").write_bytes(encode(photo))
    (folder / "mask" / "mask_a.png").write_bytes(encode(mask))
    home = tmp_path / "home"
    assert run_cli(home, "import", str(folder)).returncode == 0
    exported = run_cli(home, "export", str(tmp_path / "out"), "--format", "coco")
    assert exported.returncode == 0, exported.stderr
    assert "Exported 1 labelled photos" in exported.stdout and "coco layout" in exported.stdout
    coco = COCO(str(tmp_path / "out" / "annotations.json"))
    (image,) = coco.imgs.values()
    assert (tmp_path / "out" / "images" / image["file_name"]).is_file()
    np.testing.assert_array_equal(union_of_annotations(coco, image["id"]), mask > 0)


@pytest.mark.realdata
def test_seed_cats_round_trip_through_coco(catseg_home, switch_catseg_home, tmp_path):
    first = import_path(SHARED_DATA / "seed-cats")
    assert first.added_labelled == 81
    before = sorted((name, mask.tobytes()) for name, mask in stored_masks_by_name().items())
    assert export_dataset(tmp_path / "coco", "coco")["exported"] == 81

    switch_catseg_home(tmp_path / "second")  # an empty CATSEG_HOME and database
    assert photo_count() == 0
    again = import_path(tmp_path / "coco")
    assert (again.detected_format, again.added_labelled, again.rejected) == ("coco", 81, [])
    # Exported names are "000012_cat.3": strip the number to compare with the first import.
    after = sorted((name.split("_", 1)[1], mask.tobytes()) for name, mask in stored_masks_by_name().items())
    assert [name.rsplit(".", 1)[0] for name, _ in before] == [name.rsplit(".", 1)[0] for name, _ in after]
    assert [mask for _, mask in before] == [mask for _, mask in after]
