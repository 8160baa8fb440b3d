"""The command line refuses bad options and bad option files at once: exit 2, one line naming the culprit."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from camrepro.cli import main


def _exit_2(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "-1"])
@pytest.mark.parametrize("option", ["--gpus-per-job", "--processes"])
def test_no_or_negative_gpus_or_processes_are_refused(tmp_path, capsys, option, value):
    err = _exit_2(["train", "--out", str(tmp_path / "run"), option, value], capsys)
    assert f"argument {option}: expected a whole number >= 1, got {value!r}" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("seeds", "needle"),
    [("0,1,0", "seed 0 is given twice"), ("4294967296", "seed 4294967296 is outside 0..4294967295"),
     ("-1", "seed -1 is outside 0..4294967295")],
)  # fmt: skip
def test_repeated_or_out_of_range_seeds_are_refused(tmp_path, capsys, seeds, needle):
    err = _exit_2(["train", "--out", str(tmp_path / "run"), "--seeds", seeds], capsys)
    assert f"argument --seeds: {needle}" in err


def test_a_train_config_with_a_duplicate_key_names_file_key_and_line(tmp_path, capsys):
    config = tmp_path / "train.yaml"
    config.write_text("dataset: data/prepared/cub\nepochs: 2\nlr: 0.01\nepochs: 30\n")
    err = _exit_2(["train", "--config", str(config), "--out", str(tmp_path / "run")], capsys)
    assert err.startswith(f"camrepro: error: {config} is not valid YAML")
    assert "found duplicate key 'epochs' (first on line 2)" in err and f'"{config}", line 4' in err
    assert not (tmp_path / "run").exists()


def test_a_non_utf8_train_config_names_the_file(tmp_path, capsys):
    config = tmp_path / "train.yaml"
    config.write_bytes("# r\xe9glages\nepochs: 2\n".encode("latin-1"))
    err = _exit_2(["train", "--config", str(config), "--out", str(tmp_path / "run")], capsys)
    assert f"camrepro: error: {config} is not UTF-8 text (byte 0xe9 at offset 3)" in err


def test_a_set_value_that_is_not_yaml_names_the_option(tmp_path, capsys):
    err = _exit_2(["train", "--out", str(tmp_path / "run"), "--set", "lr=[0.1"], capsys)
    assert "camrepro: error: --set 'lr=[0.1' is not valid YAML" in err


def test_a_bad_camrepro_num_gpus_is_one_clear_line(tmp_path):
    env = os.environ | {"CAMREPRO_NUM_GPUS": "abc"}
    proc = subprocess.run(
        [sys.executable, "-m", "camrepro", "pretrain", "vgg16", "--dataset", str(tmp_path), "--out",
         str(tmp_path / "w.pt")],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert (
        proc.stderr.startswith("camrepro: error: CAMREPRO_NUM_GPUS='abc'") and "Traceback" not in proc.stderr
    )


def test_a_bad_option_in_a_train_config_names_the_file(tmp_path, capsys):
    config = tmp_path / "train.yaml"
    config.write_text("model: vgg16-gap\ndataset: data/prepared/cub\nepochs: -1\n")
    err = _exit_2(["train", "--config", str(config), "--out", str(tmp_path / "run")], capsys)
    assert f"camrepro: error: {config}: " in err and "epochs" in err and "-1" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [([], "give either --model (a trained run) or --as-is ARCH --weights FILE"),
     (["--model", "m", "--as-is", "efficientnet-lite0"], "give either --model"),
     (["--as-is", "efficientnet-lite0"], "extract --as-is needs --weights FILE")],
)  # fmt: skip
def test_extract_takes_a_trained_model_or_a_network_as_it_is(tmp_path, capsys, args, needle):
    err = _exit_2(["extract", "--dataset", str(tmp_path / "d"), "--out", str(tmp_path / "out"), *args], capsys)
    assert needle in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
