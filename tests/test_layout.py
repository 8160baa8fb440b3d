"""The per-seed layout (camrepro.layout): seed folders under runs and extractions."""

from pathlib import Path

import pytest

from camrepro.config import MAX_SEED, load_config
from camrepro.errors import CamreproError
from camrepro.layout import model_file, seed_dir, seed_dirs, seed_of
from camrepro.plan import build_plan, model_paths, run_dir


@pytest.mark.parametrize("seed", [0, 7, 10, MAX_SEED])
def test_seed_folder_round_trip(tmp_path, seed):
    folder = seed_dir(tmp_path / "run", seed)
    assert folder.parent == tmp_path / "run"
    assert seed_of(folder) == seed
    assert seed_of(str(folder)) == seed
    assert model_file(tmp_path / "run", seed).parent == folder


@pytest.mark.parametrize("name", ["s", "s01", "s-1", "seed0", "S0", "s1.tmp", "model.pt"])
def test_a_folder_that_is_no_seed_folder_is_refused_naming_it(tmp_path, name):
    with pytest.raises(CamreproError, match="not a per-seed folder") as info:
        seed_of(tmp_path / name)
    assert name in str(info.value)


def test_seed_dirs_lists_the_seed_folders_in_seed_order(tmp_path):
    for name in ("s10", "s2", "s0", "s1.tmp-x", "other"):
        (tmp_path / name).mkdir()
    (tmp_path / "s3").write_text("a file, not a folder")
    assert seed_dirs(tmp_path) == {0: tmp_path / "s0", 2: tmp_path / "s2", 10: tmp_path / "s10"}
    assert seed_dirs(tmp_path / "absent") == {}


def test_the_plans_model_paths_are_the_layouts():
    config = load_config(Path(__file__).parents[1] / "config" / "config.yaml") | {
        "seeds": [0, 3], "seeds_by_experiment": {}, "seeds_by_model": {}}
    plan = build_plan(config)
    assert plan.runs
    for run in plan.runs.values():
        if run.as_is:  # a network used as it is has no trained models (jobs read its weights file)
            continue
        assert model_paths(plan, run.id) == [str(model_file(run_dir(run.id), s)) for s in (0, 3)]
