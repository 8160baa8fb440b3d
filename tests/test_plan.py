"""The registry's lookups: tables, report and figures find runs by (role, model, head), never by ids."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from camrepro.config import load_config
from camrepro.errors import CamreproError
from camrepro.jobs import jobs
from camrepro.plan import build_plan, experiment_names

ROOT = Path(__file__).resolve().parents[1]


def test_lookups_find_the_run_its_extraction_evaluation_and_svm_job():
    plan = build_plan(load_config(ROOT / "config" / "test.yaml"))  # roles: cub -> synthetic-cub
    tap = plan.run("cub", "vgg16-gap", "tap")
    assert (tap.dataset, tap.model, tap.pool, tap.theta_tap) == ("synthetic-cub", "vgg16-gap", "tap", 0.1)
    assert plan.extraction_of(tap.id).run == tap.id and plan.extraction_of(tap.id).split == "test"
    assert set(plan.evaluation_of(tap.id).settings) == {"cam20", "nwc", "pas", "nwc-pas"}
    assert plan.run("imagenet", "vgg16-gap", "tap") is None  # that experiment is not selected
    assert plan.run("nonexistent-role", "vgg16-gap", "gap") is None
    svm = plan.svm_of("cam-cub-svm")
    assert svm.datasets == {"cub": "synthetic-cub"} and plan.runs[svm.run].model == "googlenet-gap"
    assert plan.extraction_of(svm.run) is None  # trained for its features only
    assert plan.svm_of("cam-transfer") is None


def test_the_plan_trains_each_model_with_its_recipe_from_the_paper_config():
    from camrepro.config import load_config

    config = load_config(Path(__file__).resolve().parents[1] / "config" / "paper.yaml")
    recipes = config["recipes"]
    plan = build_plan(config)
    for role, models in recipes.items():
        for model, recipe in models.items():
            runs = [r for r in plan.runs.values() if r.model == model and r.dataset == config["roles"][role]]
            assert runs, (role, model)
            for run in runs:
                assert {k: run.train[k] for k in recipe if k != "source"} == {
                    k: v for k, v in recipe.items() if k != "source"}, run.id  # fmt: skip
    # the Rethinking-CAM VGG16 recipe, as its released config gives it
    cub_vgg = plan.run("cub", "vgg16-gap", "tap").train
    assert (cub_vgg["epochs"], cub_vgg["batch_size"], cub_vgg["lr_milestones"]) == (200, 40, [60, 120, 180])
    # lr 0.003 for conv6 and the classifier, the backbone's gradient x0.1 (src/engine.py:134-136)
    assert cub_vgg["lr"] * cub_vgg["lr_new_ratio"] == pytest.approx(0.003) and cub_vgg["lr"] == pytest.approx(0.0003)
    # a model without a recipe keeps its role's schedule
    assert plan.run("imagenet", "alexnet-gap", "gap").train["lr"] == config["training"]["imagenet"]["lr"]


def test_the_cam_papers_originals_are_used_as_they_are_with_no_training_job():
    """CAM Table 1's GoogLeNet, VGGnet and AlexNet are the ImageNet networks with their own heads
    (and Table 5 their fixed features): one network each, no training job; extraction and SVM jobs
    read the weights file itself (the published checkpoint, or in the demo the pretraining's)."""
    from camrepro.jobs import jobs

    for name in ("paper.yaml", "config.yaml"):
        config = load_config(ROOT / "config" / name)
        plan = build_plan(config)
        generated = jobs(plan, config, str(ROOT / "config" / name))
        for model, pool in (("googlenet", "gap"), ("vgg16", "fc"), ("alexnet", "fc")):
            run = plan.run("imagenet", model, pool)
            assert run.as_is and run.seeds == (0,) and run.id not in generated["train"], (name, model)
            ext = plan.extraction_of(run.id)
            job = generated["extract"][ext.id]
            weights = f"data/weights/{run.weights}.pth"
            assert job.inputs["weights"] == (weights,) and "models" not in job.inputs
            assert job.command[job.command.index("--as-is") + 1] == model
            assert job.command[job.command.index("--weights") + 1] == weights
        for svm in ("cam-transfer-googlenet", "cam-transfer-alexnet"):
            job = generated["svm"][plan.svm_of(svm).id]
            assert "--as-is" in job.command and "models" not in job.inputs
        # the trained CAM networks still train, every seed
        gap = plan.run("imagenet", "googlenet-gap", "gap")
        assert not gap.as_is and gap.seeds == plan.seeds and gap.id in generated["train"]


def test_every_run_trains_on_its_roles_schedule():
    """The first run of each architecture too (its weights job was once made with the role's name
    overwritten by the stand-in dataset's, so that run fell back to the default 10 epochs); a model
    whose recipe sets its own epochs (the embedded default's AlexNets) trains those."""
    config = load_config(ROOT / "config" / "config.yaml")
    plan = build_plan(config)
    for role, dataset in (("imagenet", "synthetic-imagenet"), ("cub", "synthetic-cub")):
        runs = [r for r in plan.runs.values() if r.dataset == dataset and not r.as_is]
        assert runs
        own = {m: r["epochs"] for m, r in config["recipes"].get(role, {}).items() if "epochs" in r}
        assert any(run.model not in own for run in runs)
        for run in runs:
            assert run.train["epochs"] == own.get(run.model, config["training"][role]["epochs"]), run.id


def test_real_photos_extract_the_packaged_network_as_it_is_with_no_training_job():
    config = load_config(ROOT / "config" / "config.yaml")
    plan = build_plan(config)
    ext = plan.as_is("real-photos")
    assert (ext.run, ext.as_is, ext.dataset, ext.split, ext.size, ext.nwc) == (
        None, "efficientnet-lite0", "skimage-photos", "test", 224, True)  # fmt: skip
    assert set(plan.evaluations[ext.id].settings) == {"cam20", "nwc", "pas", "nwc-pas"}
    assert plan.weights["efficientnet-lite0"].method == "package"
    assert not any(r.model == "efficientnet-lite0" for r in plan.runs.values())
    job = jobs(plan, config, "config/config.yaml")["extract"][ext.id]
    assert job.inputs["weights"] == ("data/weights/efficientnet-lite0.pth",) and "models" not in job.inputs
    assert job.command[:6] == ("camrepro", "extract", "--as-is", "efficientnet-lite0", "--weights",
                               "data/weights/efficientnet-lite0.pth")  # fmt: skip
    # a config that runs only the real network still gets its tables and report
    only = {"datasets": {"p": {"source": "skimage-photos"}}, "roles": {"photos": "p"}, "experiments": ["real-photos"]}
    only_jobs = jobs(build_plan(only), only, "c.yaml")
    assert only_jobs["report"] and not only_jobs["train"] and set(only_jobs["weights"]) == {"efficientnet-lite0"}


def test_real_photos_without_a_photos_role_names_the_key():
    config = {"datasets": {"p": {"source": "skimage-photos"}}, "roles": {"cub": "p"}, "experiments": ["real-photos"]}
    with pytest.raises(CamreproError, match=r"roles\.photos"):
        build_plan(config)


def test_the_imagenet_val_blacklist_is_left_out_as_each_paper_did():
    """`datasets.<imagenet>.val_blacklist`: paper (CAM's localization without the devkit's blacklisted
    val images, Rethinking CAM's with all 50,000), exclude, keep; the evaluate jobs say so."""
    config = load_config(ROOT / "config" / "paper.yaml")
    assert config["datasets"]["imagenet"]["val_blacklist"] == "paper"
    for choice in ("paper", "exclude", "keep"):
        config["datasets"]["imagenet"]["val_blacklist"] = choice
        plan = build_plan(config)
        generated = jobs(plan, config, "config/paper.yaml")["evaluate"]
        for ev in plan.evaluations.values():
            ext = plan.extractions[ev.extraction]
            cam_paper = ext.transform == "tencrop"  # CAM Tables 1-3; Rethinking CAM: centercrop
            expected = ext.dataset == "imagenet" and {"paper": cam_paper, "exclude": True, "keep": False}[choice]
            assert ev.blacklist == expected, (choice, ev.id)
            assert ("--exclude-blacklisted" in generated[ev.id].command) == expected
        assert any(ev.blacklist for ev in plan.evaluations.values()) == (choice != "keep")
    # the embedded default's stand-in has no devkit: nothing is left out
    assert not any(ev.blacklist for ev in build_plan(load_config(ROOT / "config" / "config.yaml")).evaluations.values())


def test_a_val_blacklist_on_another_dataset_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("scale: synthetic\ndatasets:\n  cub: {source: cub, val_blacklist: exclude}\n")
    with pytest.raises(CamreproError, match=r"datasets\.cub\.val_blacklist: only an ImageNet dataset"):
        load_config(path)


def test_two_experiments_that_would_share_an_extraction_id_are_refused(monkeypatch):
    """An extraction id names (run, split, transform): two experiments on the same run and transform
    with different empty-box rules would write one folder twice; the plan refuses, never overwrites."""
    from camrepro import plan as plan_mod

    base = plan_mod.EXPERIMENTS["rethinking-ablation-cub"]
    twin = dataclasses.replace(base, empty_box="zero" if base.empty_box == "full" else "full")
    monkeypatch.setitem(plan_mod.EXPERIMENTS, "ablation-twin", twin)
    config = load_config(ROOT / "config" / "config.yaml") | {"experiments": ["rethinking-ablation-cub", "ablation-twin"]}
    with pytest.raises(CamreproError, match="one extraction id cannot hold both"):
        build_plan(config)


def test_halve_stride_reaches_the_training_commands_and_pretraining_only_when_asked():
    config = load_config(ROOT / "config" / "config.yaml")
    for runs, pretraining in ((True, False), (False, True), (False, False)):
        config["models"] = dict(config["models"]) | {"halve_stride": runs}
        config["models"]["pretrain"] = dict(config["models"]["pretrain"]) | {"halve_stride": pretraining}
        generated = jobs(build_plan(config), config, "config.yaml")
        trains = list(generated["train"].values())
        pretrains = [j for j in generated["weights"].values() if "pretrain" in j.command]
        assert trains and pretrains
        assert all(("halve_stride=true" in j.command) == runs for j in trains)
        assert all(j.command[j.command.index("--halve-stride") + 1] == str(pretraining).lower() for j in pretrains)


def _option(command: tuple[str, ...], flag: str) -> str:
    return command[command.index(flag) + 1]


def test_size_by_arch_sizes_every_job_of_that_architecture_only():
    """AlexNet's runs at their own input size from pretraining to the SVM's features; the others at
    models.size."""
    config = load_config(ROOT / "config" / "config.yaml")
    config["models"] = dict(config["models"]) | {"size": 64, "size_by_arch": {"alexnet": 112}}
    plan = build_plan(config)
    generated = jobs(plan, config, "config.yaml")
    assert plan.weights["alexnet"].pretrain["size"] == 112 and plan.weights["vgg16"].pretrain["size"] == 64
    assert _option(generated["weights"]["alexnet"].command, "--crop") == "112"
    assert _option(generated["weights"]["vgg16"].command, "--crop") == "64"
    for model, pool, size in (("alexnet-gap", "gap", 112), ("alexnet*-gap", "gap", 112), ("vgg16-gap", "gap", 64),
                              ("googlenet-gap", "gap", 64)):  # fmt: skip
        run = plan.run("imagenet", model, pool)
        assert (run.train["crop"], run.train["resize"]) == (size, round(size * 8 / 7)), model
        assert plan.extraction_of(run.id).size == size, model
    original = plan.run("imagenet", "alexnet", "fc")  # the original AlexNet, used as it is
    assert plan.extraction_of(original.id).size == 112
    assert plan.svm_of("cam-transfer-alexnet").size == 112 and plan.svm_of("cam-transfer").size == 64
    assert _option(generated["svm"][plan.svm_of("cam-transfer-alexnet").id].command, "--size") == "112"


def test_size_by_arch_for_an_unknown_architecture_is_refused_naming_it(tmp_path):
    path = tmp_path / "config.yaml"
    text = (ROOT / "config" / "config.yaml").read_text()
    assert "  size_by_arch: {alexnet: 112}\n" in text
    path.write_text(text.replace("  size_by_arch: {alexnet: 112}\n", "  size_by_arch: {alexnett: 112}\n"))
    with pytest.raises(CamreproError, match="alexnett"):
        load_config(path)


def _every_experiment(config: dict) -> dict:
    return config | {"experiments": experiment_names()}


def test_fold_bn_on_a_network_with_batchnorm_is_refused_naming_the_keys():
    config = _every_experiment(load_config(ROOT / "config" / "config.yaml"))  # resnet50-se's table included
    config["training"] = {r: dict(s) for r, s in config["training"].items()}
    config["training"]["cub"]["fold_bn"] = True  # every CUB run, resnet50-se's included
    with pytest.raises(CamreproError, match=r"fold_bn is set for (resnet50-se|mobilenet-v1|inception-v3-spg)"
                                            r" on the cub role \(training.cub or recipes.cub"):
        build_plan(config)


def _seeds_arg(command: tuple[str, ...]) -> str:
    return command[command.index("--seeds") + 1]


def test_seeds_by_experiment_trains_fewer_networks_for_its_runs_and_the_union_for_shared_ones():
    config = _every_experiment(load_config(ROOT / "config" / "config.yaml"))
    config["seeds"] = [0, 1, 2]
    config["seeds_by_experiment"] = {"rethinking-backbones-cub": [0], "cam-transfer": [0, 2]}
    plan = build_plan(config)
    generated = jobs(plan, config, "config.yaml")
    # read by Table 2 only: one network; shared with the TAP/NWC/PaS ablation: all three
    assert plan.run("cub", "resnet50-se", "gap").seeds == (0,)
    assert plan.run("cub", "vgg16-gap", "tap").seeds == (0, 1, 2)
    assert plan.run("imagenet", "resnet50-se", "gap").seeds == (0, 1, 2)  # its own experiment: not named
    resnet = plan.run("cub", "resnet50-se", "gap")
    assert _seeds_arg(generated["train"][resnet.id].command) == "0"
    assert _seeds_arg(generated["extract"][plan.extraction_of(resnet.id).id].command) == "0"
    assert plan.evaluation_of(resnet.id) is not None
    # the SVM experiment reads its own seeds of a run another experiment trains at three
    transfer, cub_svm = plan.svm_of("cam-transfer"), plan.svm_of("cam-cub-svm")
    assert plan.runs[transfer.run].seeds == (0, 1, 2) and transfer.run == cub_svm.run
    assert _seeds_arg(generated["svm"][transfer.id].command) == "0,2"
    assert _seeds_arg(generated["svm"][cub_svm.id].command) == "0,1,2"
    # an SVM job waits for (and reruns after) only the models it reads
    assert generated["svm"][transfer.id].inputs["models"] == tuple(
        f"results/models/{transfer.run}/s{s}/model.pt" for s in (0, 2))  # fmt: skip
    assert len(generated["svm"][cub_svm.id].inputs["models"]) == 3


def test_seeds_by_model_trains_fewer_networks_for_that_models_runs_only():
    """CAM Table 1's rows no claim reads (VGGnet-GAP, AlexNet-GAP) train fewer networks; the rows a
    claim reads (GoogLeNet-GAP and -GMP) keep every seed; an SVM job reads the seeds its run has."""
    config = load_config(ROOT / "config" / "config.yaml") | {"seeds": [0, 1, 2], "seeds_by_experiment": {}}
    config["seeds_by_model"] = {"vgg16-cam": [2, 0], "alexnet-gap": [0], "googlenet-gap": [0, 1]}
    plan = build_plan(config)
    generated = jobs(plan, config, "config.yaml")
    vgg = plan.run("imagenet", "vgg16-cam", "gap")
    assert vgg.seeds == (0, 2) and plan.run("imagenet", "alexnet-gap", "gap").seeds == (0,)
    assert plan.run("imagenet", "googlenet-gmp", "gmp").seeds == (0, 1, 2)
    assert _seeds_arg(generated["train"][vgg.id].command) == "0,2"
    assert _seeds_arg(generated["extract"][plan.extraction_of(vgg.id).id].command) == "0,2"
    assert _seeds_arg(generated["svm"][plan.svm_of("cam-cub-svm").id].command) == "0,1"
    assert plan.seeds_by_model == {"vgg16-cam": (0, 2), "alexnet-gap": (0,), "googlenet-gap": (0, 1)}


@pytest.mark.parametrize(
    "chosen, message",
    [({"vgg99-gap": [0]}, r"seeds_by_model names an unknown model 'vgg99-gap'; known: .*vgg16-cam"),
     ({"vgg16-cam": [3]}, r"seeds_by_model.vgg16-cam = \[3\] must be some of seeds \[0, 1, 2\]"),
     ({"vgg16-cam": [1]}, "seed 0 among them")],
)  # fmt: skip
def test_seeds_by_model_outside_the_seeds_is_refused_naming_the_key(chosen, message):
    config = load_config(ROOT / "config" / "config.yaml") | {"seeds": [0, 1, 2], "seeds_by_model": chosen}
    with pytest.raises(CamreproError, match=message):
        build_plan(config)


def test_seeds_by_experiment_keeps_the_order_of_seeds():
    """[2, 0] and [0, 2] are the same seeds: one command, one params entry, one training rule."""
    config = _every_experiment(load_config(ROOT / "config" / "config.yaml")) | {"seeds": [0, 1, 2]}
    orders = []
    for chosen in ([2, 0], [0, 2]):
        plan = build_plan(config | {"seeds_by_experiment": {"rethinking-backbones-cub": chosen}})
        orders.append(plan.run("cub", "resnet50-se", "gap").seeds)
    assert orders == [(0, 2), (0, 2)]


def test_seeds_by_experiment_of_an_experiment_left_out_is_not_in_the_plan():
    """The report lists the plan's fewer-seed experiments: one the config does not run is not among them."""
    config = load_config(ROOT / "config" / "config.yaml") | {"seeds": [0, 1, 2]}
    config["seeds_by_experiment"] = {"rethinking-backbones-cub": [0], "cam-transfer": [0]}
    config["experiments"] = [e for e in experiment_names() if e != "rethinking-backbones-cub"]
    plan = build_plan(config)
    assert plan.seeds_by_experiment == {"cam-transfer": (0,)}
    assert plan.run("cub", "resnet50-se", "gap") is None
    assert plan.run("cub", "vgg16-gap", "gap").seeds == (0, 1, 2)


@pytest.mark.parametrize(
    "chosen, message",
    [({"rethinking-backbones": [0]}, "unknown experiment 'rethinking-backbones'"),
     ({"cam-transfer": [3]}, r"seeds_by_experiment.cam-transfer = \[3\] must be some of seeds \[0, 1, 2\]"),
     ({"cam-transfer": [1, 2]}, "seed 0 among them")],
)  # fmt: skip
def test_seeds_by_experiment_outside_the_seeds_is_refused_naming_the_key(chosen, message):
    config = load_config(ROOT / "config" / "config.yaml") | {"seeds": [0, 1, 2], "seeds_by_experiment": chosen}
    with pytest.raises(CamreproError, match=message):
        build_plan(config)
