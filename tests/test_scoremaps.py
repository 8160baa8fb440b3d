"""Score-map files (evaluate-scoremaps): a bad .npy is refused naming the file, before it is read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npy_format

from camrepro.cli import main
from camrepro.data.metadata import SplitMeta, write_split
from camrepro.errors import CamreproError
from camrepro.scoremaps import evaluate_scoremaps


def _dataset(tmp_path: Path) -> tuple[Path, Path]:
    meta = SplitMeta(
        image_ids=["a.jpg", "b.jpg"],
        labels={"a.jpg": 0, "b.jpg": 0},
        sizes={"a.jpg": (48, 48), "b.jpg": (48, 48)},
        boxes={"a.jpg": [(4, 4, 30, 30)], "b.jpg": [(10, 10, 40, 40)]},
    )
    write_split(tmp_path, "val", meta)
    maps = tmp_path / "maps"
    maps.mkdir()
    for image_id in meta.image_ids:
        np.save(maps / f"{image_id}.npy", np.linspace(0, 1, 48 * 48, dtype=np.float32).reshape(48, 48))
    return maps, tmp_path / "val"


def _header_only(path: Path, shape: tuple[int, ...], descr: str = "<f4", data: bytes = b"\0" * 16) -> None:
    """A .npy whose header claims `shape`, followed by only `data` (the array itself is never written)."""
    with open(path, "wb") as handle:
        npy_format.write_array_header_1_0(handle, {"descr": descr, "fortran_order": False, "shape": shape})
        handle.write(data)


def test_good_maps_evaluate(tmp_path):
    maps, meta = _dataset(tmp_path)
    result = evaluate_scoremaps(maps, meta, 0.1, workers=1, progress=False)
    assert set(result["max_box_acc"]) == {"30", "50", "70"}


def test_an_empty_score_map_names_the_file(tmp_path):
    maps, meta = _dataset(tmp_path)
    np.save(maps / "b.jpg.npy", np.zeros((0, 48), np.float32))
    with pytest.raises(CamreproError, match=rf"{maps / 'b.jpg.npy'}: the score map is empty \(0 x 48\)"):
        evaluate_scoremaps(maps, meta, 0.1, workers=1, progress=False)


def test_a_header_claiming_200k_by_200k_is_refused_before_any_allocation(tmp_path):
    maps, meta = _dataset(tmp_path)
    _header_only(maps / "a.jpg.npy", (200_000, 200_000))
    with pytest.raises(
        CamreproError, match=rf"{maps / 'a.jpg.npy'}: the header claims a 200000 x 200000 score map"
    ):
        evaluate_scoremaps(maps, meta, 0.1, workers=1, progress=False)


@pytest.mark.parametrize(
    ("array", "needle"),
    [
        (np.full((48, 48, 3), 0.5, np.float32), r"expected a 2-D array \(height, width\), got \(48, 48, 3\)"),
        (np.zeros((48, 48), np.int64), r"expected floating-point values in \[0, 1\], got dtype int64"),
        (np.full((48, 48), 1.5, np.float32), r"values must lie in \[0, 1\] \(min 1.5, max 1.5\)"),
    ],
)
def test_a_map_of_the_wrong_kind_names_the_file_and_what_is_wrong(tmp_path, array, needle):
    maps, meta = _dataset(tmp_path)
    np.save(maps / "a.jpg.npy", array)
    with pytest.raises(CamreproError, match=rf"{maps / 'a.jpg.npy'}: {needle}"):
        evaluate_scoremaps(maps, meta, 0.1, workers=1, progress=False)


def test_a_truncated_map_names_the_file(tmp_path):
    maps, meta = _dataset(tmp_path)
    _header_only(maps / "a.jpg.npy", (48, 48), data=b"\0" * 100)
    with pytest.raises(CamreproError, match=rf"{maps / 'a.jpg.npy'} is not a readable .npy array"):
        evaluate_scoremaps(maps, meta, 0.1, workers=1, progress=False)


def test_the_cli_exits_2_on_an_empty_map(tmp_path, capsys):
    maps, meta = _dataset(tmp_path)
    np.save(maps / "a.jpg.npy", np.zeros((48, 0), np.float32))
    argv = ["evaluate-scoremaps", "--scoremap-root", str(maps), "--metadata-root", str(meta),
            "--out", str(tmp_path / "out.json"), "-q", "--workers", "1"]  # fmt: skip
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert f"{maps / 'a.jpg.npy'}: the score map is empty (48 x 0)" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()
