"""camrepro.protocol_table: the report's per-table protocol (paper text | released code | this run);
the facts are data with their sources, the run column is read from the plan and config."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from camrepro.config import load_config
from camrepro.plan import build_plan
from camrepro.protocol_table import PROBES, protocol_facts, protocol_rows
from camrepro.tables import TABLE_NAMES

ROOT = Path(__file__).resolve().parents[1]
PAPER = load_config(ROOT / "config" / "paper.yaml")
REPOS = {"cam": "zhoubolei/CAM ", "rethinking": "won-bae/rethinkingCAM "}
TEXTS = {"cam": "cam_zhou_2016.txt:", "rethinking": "rethinking_cam_bae_2020.md:"}


def test_every_table_has_its_protocol_facts_each_with_a_source():
    facts = protocol_facts()
    assert set(facts) == set(TABLE_NAMES)
    for table, aspects in facts.items():
        paper = table.split("-")[0]
        assert aspects and len({a["aspect"] for a in aspects}) == len(aspects), table
        for a in aspects:
            assert set(a) == {"aspect", "text", "code", "run"} and a["run"] in PROBES, (table, a)
            assert a["text"] or a["code"], (table, a["aspect"])  # else there is nothing to compare
            if a["text"]:
                assert a["text"]["says"] and a["text"]["source"].startswith(TEXTS[paper]), (table, a)
            if a["code"]:
                assert a["code"]["did"] and a["code"]["source"].startswith(REPOS[paper]), (table, a)


def _run(config: dict, table: str, aspect: str) -> str:
    return next(r["run"] for r in protocol_rows(build_plan(config), config, table) if r["aspect"] == aspect)


def test_this_runs_column_follows_the_config():
    assert "left out of localization (val_blacklist: paper)" in _run(PAPER, "cam-table2", "Evaluation images")
    assert "kept (val_blacklist: paper)" in _run(PAPER, "rethinking-table2", "ImageNet evaluation images")
    keep = copy.deepcopy(PAPER)
    keep["datasets"]["imagenet"]["val_blacklist"] = "keep"
    assert "kept (val_blacklist: keep)" in _run(keep, "cam-table2", "Evaluation images")

    recipe = PAPER["recipes"]["imagenet"]["googlenet-gap"]
    assert (f"googlenet-gap (gap) on imagenet: {recipe['epochs']} epochs, batch {recipe['batch_size']}, lr "
            f"{recipe['lr']:g}") in _run(PAPER, "cam-table1", "Training")  # fmt: skip
    longer = copy.deepcopy(PAPER)
    longer["recipes"]["imagenet"]["googlenet-gap"] = dict(recipe, epochs=recipe["epochs"] + 5)
    assert f"googlenet-gap (gap) on imagenet: {recipe['epochs'] + 5} epochs" in _run(longer, "cam-table1", "Training")

    assert "googlenet-gap: torchvision GoogLeNet_Weights.IMAGENET1K_V1" in _run(PAPER, "cam-table1", "Starting weights")
    own = copy.deepcopy(PAPER)
    own["models"]["weights"] = {"googlenet": "file"}
    assert "googlenet-gap: the user's file for googlenet" in _run(own, "cam-table1", "Starting weights")

    assert _run(PAPER, "cam-table1", "Test-time transform").startswith("ten 224 px crops of the image warped to 256 px")
    small = copy.deepcopy(PAPER)
    small["models"]["size"] = 112
    assert _run(small, "cam-table1", "Test-time transform").startswith("ten 112 px crops of the image warped to 128 px")
    assert _run(small, "rethinking-table3", "Test-time transform").startswith("warped to 128 x 128 px, centre crop 112")


def test_an_architecture_at_its_own_size_is_named_with_its_size():
    own = copy.deepcopy(PAPER)
    own["models"] = dict(own["models"]) | {"size_by_arch": {"alexnet": 112}}
    parts = _run(own, "cam-table1", "Test-time transform").split("; ")
    alexnets = next(p for p in parts if "ten 112 px crops" in p)
    others = next(p for p in parts if "ten 224 px crops" in p)
    names, _, how = alexnets.partition(": ")
    assert set(names.split(", ")) == {"alexnet-gap", "alexnet*-gap", "alexnet"}  # the original, as it is, too
    assert how.startswith("ten 112 px crops of the image warped to 128 px")
    assert "googlenet-gap" in others.partition(": ")[0] and "alexnet" not in others.partition(": ")[0]
    assert "alexnet" not in _run(own, "rethinking-table3", "Test-time transform")  # one size there: no names
    weights = _run(own | {"models": own["models"] | {"pretrain": {"epochs": 2}}}, "cam-table1", "Starting weights")
    assert "alexnet-gap: alexnet pretrained here on imagenet (112 px, epochs 2)" in weights
    assert "googlenet-gap: googlenet pretrained here on imagenet (224 px, epochs 2)" in weights


def test_this_runs_column_names_the_networks_as_built_and_the_originals_as_they_are():
    networks = _run(PAPER, "cam-table1", "GAP networks")
    assert "vgg16-cam (gap): 1 added conv(s) in 2 group(s), dropout 0.5" in networks
    assert "alexnet*-gap (gap): 3 added conv(s) in 2 group(s), dropout 0.5" in networks
    assert "vgg16-gap (tap): 1 added conv(s) in 1 group(s), dropout 0 before the classifier, theta_tap 0.1" in _run(
        PAPER, "rethinking-table3", "Network")
    originals = _run(PAPER, "cam-table1", "Original networks")
    assert all(f"{m}: its weights {m} used as they are" in originals for m in ("googlenet", "vgg16", "alexnet"))
    assert "alexnet's fc7 (used as it is)" in _run(PAPER, "cam-table5", "Features")


def test_a_halved_stride_is_said_for_every_network_it_changes_and_only_there():
    embedded = load_config(ROOT / "config" / "config.yaml")
    assert embedded["models"]["halve_stride"] is True
    said = "its last downsampling at stride 1"
    for table, aspect in (("cam-table1", "GAP networks"), ("rethinking-table3", "Network")):
        rows = _run(embedded, table, aspect).split("; ")
        assert rows and all(said in row for row in rows), rows
        assert said not in _run(PAPER, table, aspect)
    # the originals are the pretrained networks: halved only when pretraining was
    assert said not in _run(embedded, "cam-table1", "Original networks")
    halved_pretraining = copy.deepcopy(embedded)
    halved_pretraining["models"]["pretrain"]["halve_stride"] = True
    assert said in _run(halved_pretraining, "cam-table1", "Original networks")
    plain = copy.deepcopy(embedded)
    plain["models"]["halve_stride"] = False
    assert said not in _run(plain, "cam-table1", "GAP networks") + _run(plain, "cam-table1", "Original networks")


@pytest.mark.parametrize("table", [t for t in TABLE_NAMES if t.startswith("cam-")])
def test_a_table_this_config_does_not_run_says_so(table):
    """Only the Rethinking-CAM ablation on CUB: every CAM table's run column says it is not run
    (the Table 3 reference rows are the paper's own, whatever runs)."""
    config = {"scale": "synthetic", "datasets": {"c": {"synthetic": {"preset": "synthetic-cub", "seed": 0}}},
              "roles": {"cub": "c"}, "experiments": ["rethinking-ablation-cub"]}  # fmt: skip
    rows = protocol_rows(build_plan(config), config, table)
    assert rows and all(r["run"] == "not run by this config" for r in rows if r["aspect"] != "Backprop [22] row")


def test_the_originals_are_described_as_what_is_loaded():
    """At paper scale an original is the published checkpoint with its own head; in the embedded
    default it is the network the weights job pretrained (camrepro.weights.PRETRAIN_MODEL), which
    is what load_as_is returns, GAP head and all."""
    from camrepro.weights import PRETRAIN_MODEL

    embedded = load_config(ROOT / "config" / "config.yaml")
    row = _run(embedded, "cam-table1", "Original networks")
    assert f"alexnet: the network the weights job pretrained ({PRETRAIN_MODEL['alexnet']}," in row, row
    assert "own head" not in row
    svm = _run(embedded, "cam-table5", "Features")
    assert f"{PRETRAIN_MODEL['alexnet']}'s gap output" in svm and "fc7" not in svm, svm
    paper_row = _run(PAPER, "cam-table1", "Original networks")
    assert "alexnet: its weights alexnet used as they are, own head" in paper_row, paper_row


def test_the_spg_networks_dropout_inside_the_added_layers_is_counted():
    row = _run(PAPER, "rethinking-table2", "Networks")
    spg = next(part for part in row.split("; ") if part.startswith("inception-v3-spg"))
    assert "3 dropout(s) of 0.5 in the added layers" in spg, spg  # wsolevaluation wsol/inception.py
