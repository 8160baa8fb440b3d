"""Prepared-dataset metadata: wrong boxes, labels, duplicate rows, unsafe image ids, bad encodings."""

from __future__ import annotations

from pathlib import Path

import pytest

from camrepro.data.metadata import DatasetInfo, SplitMeta, read_split, write_split
from camrepro.errors import DataError

W, H = 60, 40  # every image of the tiny dataset


def _dataset(root: Path, task: str = "wsol") -> Path:
    ids = ["a/img0.jpg", "a/img1.jpg", "b/img2.jpg"]
    meta = SplitMeta(
        ids,
        {i: k % 2 for k, i in enumerate(ids)},
        {i: (W, H) for i in ids},
        {i: [(5, 6, 30, 35)] for i in ids},
        multilabels={i: [0, 1][: k + 1 if k < 2 else 0] for k, i in enumerate(ids)} if task == "multilabel" else {},
    )
    write_split(root, "test", meta)
    DatasetInfo(name="tiny", classes=["a", "b"], splits=["test"], task=task).save(root)
    return root


def _rewrite(path: Path, line: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[line - 1] = text
    path.write_text("\n".join(lines) + "\n")


def test_boxes_touching_the_last_pixel_are_valid(tmp_path):
    root = _dataset(tmp_path)
    # x1/y1 are inclusive: the last column is W - 1, the last row H - 1
    _rewrite(root / "test" / "localization.txt", 2, f"a/img1.jpg,0,0,{W - 1},{H - 1}")
    assert read_split(root, "test").boxes["a/img1.jpg"] == [(0, 0, W - 1, H - 1)]


@pytest.mark.parametrize(
    "box",
    [
        (0, 0, W, H - 1),  # x1 == width: one column past the image
        (0, 0, W - 1, H),  # y1 == height
        (-1, 0, 10, 10),  # negative x0
        (0, -3, 10, 10),  # negative y0
        (100, 50, 120, 60),  # wholly outside
        (20, 5, 10, 30),  # x1 < x0
        (5, 20, 30, 10),  # y1 < y0
    ],
)
def test_box_outside_its_image_names_file_line_image_and_box(tmp_path, box):
    root = _dataset(tmp_path)
    _rewrite(root / "test" / "localization.txt", 2, "a/img1.jpg," + ",".join(map(str, box)))
    with pytest.raises(DataError) as err:
        read_split(root, "test")
    msg = str(err.value)
    assert "localization.txt:2" in msg and "'a/img1.jpg'" in msg and ",".join(map(str, box)) in msg


@pytest.mark.parametrize("label", ["-1", "2", "7"])
def test_label_outside_the_classes_of_a_wsol_split_is_refused(tmp_path, label):
    root = _dataset(tmp_path)
    _rewrite(root / "test" / "class_labels.txt", 3, f"b/img2.jpg,{label}")
    with pytest.raises(
        DataError, match=rf"class_labels\.txt:3: label {label} of image 'b/img2\.jpg'.*0\.\.1"
    ):
        read_split(root, "test")


def test_multilabel_split_keeps_its_placeholder_label(tmp_path):
    root = _dataset(tmp_path, task="multilabel")
    _rewrite(root / "test" / "class_labels.txt", 3, "b/img2.jpg,-1")
    assert read_split(root, "test").labels["b/img2.jpg"] == -1


def test_multilabel_split_reads_each_images_classes_and_refuses_an_unknown_one(tmp_path):
    root = _dataset(tmp_path, task="multilabel")
    path = root / "test" / "multilabels.txt"
    assert path.read_text() == "a/img0.jpg,0\na/img1.jpg,0 1\nb/img2.jpg,\n"
    assert read_split(root, "test").multilabels == {"a/img0.jpg": [0], "a/img1.jpg": [0, 1], "b/img2.jpg": []}
    _rewrite(path, 2, "a/img1.jpg,0 2")
    with pytest.raises(DataError, match=r"multilabels.txt:2: class 2 of image 'a/img1.jpg'"):
        read_split(root, "test")
    path.unlink()
    with pytest.raises(DataError, match="multilabels.txt not found"):
        read_split(root, "test")


@pytest.mark.parametrize(
    "table,row",
    [
        ("class_labels.txt", "a/img0.jpg,1"),  # conflicting label
        ("class_labels.txt", "a/img0.jpg,0"),  # identical duplicate
        ("image_sizes.txt", f"a/img0.jpg,{W},{H + 1}"),
    ],
)
def test_two_rows_for_one_image_name_both_lines(tmp_path, table, row):
    root = _dataset(tmp_path)
    path = root / "test" / table
    path.write_text(path.read_text() + row + "\n")
    with pytest.raises(DataError, match=rf"{table}:4: .*'a/img0\.jpg'.*line 1"):
        read_split(root, "test")


def test_row_for_an_image_not_in_the_split_is_refused(tmp_path):
    root = _dataset(tmp_path)
    path = root / "test" / "localization.txt"
    path.write_text(path.read_text() + "other.jpg,1,1,2,2\n")
    with pytest.raises(DataError, match=r"localization\.txt:4: .*'other\.jpg'.*image_ids\.txt"):
        read_split(root, "test")


@pytest.mark.parametrize("bad", ["../x.jpg", "/etc/passwd", "a/../../x.jpg", "a/./../../x.jpg"])
def test_image_ids_leaving_the_image_root_are_refused(tmp_path, bad):
    root = _dataset(tmp_path)
    for name in ("image_ids.txt", "class_labels.txt", "image_sizes.txt", "localization.txt"):
        path = root / "test" / name
        path.write_text(path.read_text().replace("b/img2.jpg", bad))
    with pytest.raises(DataError, match=rf"image_ids\.txt:3: image id {bad!r}"):
        read_split(root, "test")


def test_mask_paths_leaving_the_mask_root_are_refused(tmp_path):
    root = _dataset(tmp_path)
    (root / "test" / "masks.txt").write_text(
        "a/img0.jpg,m0.png,\na/img1.jpg,../../m1.png,\nb/img2.jpg,m2.png,\n"
    )
    with pytest.raises(DataError, match=r"masks\.txt:2: mask path '\.\./\.\./m1\.png'"):
        read_split(root, "test")


@pytest.mark.parametrize("name", ["image_ids.txt", "class_labels.txt", "localization.txt"])
def test_non_utf8_metadata_names_the_file(tmp_path, name):
    root = _dataset(tmp_path)
    path = root / "test" / name
    path.write_bytes(path.read_bytes().replace(b"img1", b"img\xff1"))
    with pytest.raises(DataError, match=rf"{name}.*not UTF-8"):
        read_split(root, "test")


def test_non_utf8_dataset_json_names_the_file(tmp_path):
    root = _dataset(tmp_path)
    path = root / "dataset.json"
    path.write_bytes(path.read_bytes().replace(b'"tiny"', b'"t\xe9ny"'))
    with pytest.raises(DataError, match=r"dataset\.json.*not UTF-8"):
        DatasetInfo.load(root)
    with pytest.raises(DataError, match=r"dataset\.json.*not UTF-8"):
        read_split(root, "test")


def test_writing_a_box_outside_its_image_is_refused_before_writing(tmp_path):
    meta = SplitMeta(["a.jpg", "b.jpg"], {"a.jpg": 0, "b.jpg": 1}, {"a.jpg": (W, H), "b.jpg": (W, H)})
    meta.boxes = {"a.jpg": [(0, 0, W - 1, H - 1)], "b.jpg": [(1, 1, 2, 2), (0, 0, W, 10)]}
    with pytest.raises(DataError, match=rf"localization\.txt:3: box 0,0,{W},10 of image 'b\.jpg'"):
        write_split(tmp_path, "test", meta)
    assert not (tmp_path / "test").exists() or not any((tmp_path / "test").iterdir())
