"""The workflow end to end through Snakemake and DVC, the registry behind both, and config validation."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from camrepro.config import load_config
from camrepro.data import synthetic
from camrepro.dvcgen import generate
from camrepro.jobs import jobs
from camrepro.layout import seed_dir
from camrepro.plan import build_plan, experiment_names

ROOT = Path(__file__).resolve().parents[1]


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = synthetic.render_image

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 20:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(synthetic, "render_image", failing)
    with pytest.raises(KeyboardInterrupt):
        synthetic.generate("synthetic-cub", 0, tmp_path / "out", scale=0.2, progress=False)
    assert list(tmp_path.iterdir()) == []  # no output, no temporary folder


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(Path(sys.executable).parent))
    if path is None:
        pytest.skip(f"{name} is not installed in this environment")
    return path


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", **extra}


def _snakemake(
    workdir: Path, config: Path, *args: str, env: dict | None = None
) -> subprocess.CompletedProcess:
    cmd = [_tool("snakemake"), "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(config), "--cores", "2", *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, env=env or _env())


def _job_stats(output: str) -> dict[str, int]:
    block = output[output.index("Job stats:") :].splitlines()[3:]
    stats = {}
    for line in block:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        stats[parts[0]] = int(parts[1])
    return stats


TEST_CONFIG = ROOT / "config" / "test.yaml"


@pytest.fixture(scope="module")
def test_config_run(tmp_path_factory) -> Path:
    """The test config run once, uninterrupted, with two simulated GPUs."""
    workdir = tmp_path_factory.mktemp("uninterrupted")
    env = _env(CAMREPRO_NUM_GPUS="2", CAMREPRO_GPU_LOCK_DIR=str(workdir / "locks"))
    res = _snakemake(workdir, TEST_CONFIG, "--resources", "gpu=2", env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    return workdir


@pytest.mark.slow
def test_snakemake_runs_the_test_config_end_to_end_and_a_rerun_does_nothing(test_config_run):
    """Data, pretraining, training, extraction, evaluation, an SVM experiment, the tables and the
    report; with two simulated GPUs, every GPU job claims a device."""
    tmp_path, config = test_config_run, TEST_CONFIG
    env = _env(CAMREPRO_NUM_GPUS="2", CAMREPRO_GPU_LOCK_DIR=str(tmp_path / "locks"))
    plan = build_plan(load_config(config))
    table = pd.read_csv(tmp_path / "results" / "tables" / "metrics.csv")
    assert set(table["evaluation"]) == set(plan.evaluations)
    # one row per run x seed x setting the registry asks for
    assert len(table) == sum(len(e.settings) * len(plan.seeds) for e in plan.evaluations.values())
    synthetic = table["dataset"].str.startswith("synthetic-")  # the real photos have no masks, so no PxAP
    assert table["gt_known_loc"].between(0, 100).all() and table[synthetic]["pxap"].notna().all()
    photos = table[table["dataset"] == "skimage-photos"]  # the real network, extracted as it is
    assert set(photos["model"]) == {"efficientnet-lite0"} and set(photos["seed"]) == {0}
    ablation = pd.read_csv(tmp_path / "results" / "tables" / "rethinking-table3.csv")
    cub = ablation[ablation["column"].str.startswith("cub_") & ablation["paper"].notna()]
    assert cub["reproduced"].notna().all() and set(cub["status"]) <= {"matches", "differs"}
    cub_svm = pd.read_csv(tmp_path / "results" / "tables" / "cam-table4.csv").set_index("row")
    assert cub_svm.loc[["full-image", "crop", "bbox"], "reproduced"].between(0, 100).all()
    html = (tmp_path / "reports" / "replication.html").read_text()
    assert "EMBEDDED SYNTHETIC BENCHMARK" in html and "Rethinking-CAM Table 3" in html
    assert (tmp_path / "reports" / "replication-figures" / "cub-crops.png").exists()
    assert "A real ImageNet network on real photos" in html
    assert (tmp_path / "reports" / "replication-figures" / "real-photos.png").exists()
    for name in ("synthetic-cub", "synthetic-imagenet"):
        report = json.loads((tmp_path / "results" / "data" / f"{name}.verify.json").read_text())
        assert all(s["images"] > 0 and s["decoded"] for s in report["splits"].values())
    for run in (r for r, v in plan.runs.items() if not v.as_is):
        assert (tmp_path / "benchmarks" / "train" / f"{run}.tsv").exists()
        assert re.search(
            r"claimed GPU\(s\) \[[01]\]", (tmp_path / "logs" / "train" / f"{run}.log").read_text()
        )
    again = _snakemake(tmp_path, config, "-n", env=env)
    assert "Nothing to be done" in again.stdout + again.stderr
    # Snakemake's own report packages the replication page and its figures
    zipped = tmp_path / "snakemake-report.zip"
    assert _snakemake(tmp_path, config, "--report", str(zipped), env=env).returncode == 0
    names = zipfile.ZipFile(zipped).namelist()
    assert any(n.endswith("replication.html") for n in names) and any(
        n.endswith("cub-crops.png") for n in names
    )
    # `dvc pull` / `dvc checkout` give restored files new, unordered times; `snakemake --touch`
    # (the documented step after a checkout) puts them back in order without running anything
    for path in (tmp_path / "data").rglob("*"):
        os.utime(path)
    stale = _snakemake(tmp_path, config, "-n", env=env)
    assert "Nothing to be done" not in stale.stdout + stale.stderr
    model = next((tmp_path / "results" / "models").rglob("model.pt"))
    before = model.read_bytes()
    assert _snakemake(tmp_path, config, "--touch", env=env).returncode == 0
    restored = _snakemake(tmp_path, config, "-n", env=env)
    assert "Nothing to be done" in restored.stdout + restored.stderr, restored.stdout[-2000:]
    assert model.read_bytes() == before


@pytest.mark.slow
def test_after_sigkill_a_plain_rerun_finishes_with_the_uninterrupted_metrics(tmp_path, test_config_run):
    """Kill -9 the main Snakemake process mid-run (its running jobs are orphaned and go on), then
    run the same command again, with no --unlock or --rerun-incomplete: the default profile and
    camrepro.recovery make it finish, with the same numbers as a run that was never killed."""
    cmd = [_tool("snakemake"), "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
           "--configfile", str(TEST_CONFIG), "--cores", "2"]  # fmt: skip
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(),
                             start_new_session=True)  # fmt: skip
    try:
        models = tmp_path / "results" / "models"
        for _ in range(3000):  # until the first trained model is in place (bounded: 10 min)
            if first.poll() is not None or any(models.rglob("model.pt")):
                break
            time.sleep(0.2)
        assert first.poll() is None, "the run finished before it could be killed"
        assert list((tmp_path / ".snakemake" / "locks").glob("*.lock"))  # what a kill leaves
        first.send_signal(signal.SIGKILL)
        first.wait()
        again = subprocess.run(cmd, capture_output=True, text=True, env=_env())
        assert again.returncode == 0, again.stderr[-3000:]
        assert "stale lock" in again.stderr
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(first.pid, signal.SIGKILL)  # any job the kill orphaned
    metrics = pd.read_csv(tmp_path / "results" / "tables" / "metrics.csv")
    reference = pd.read_csv(test_config_run / "results" / "tables" / "metrics.csv")
    pd.testing.assert_frame_equal(metrics, reference)
    assert not list(tmp_path.rglob("*.tmp-*"))


def test_a_config_with_a_duplicate_key_fails_before_any_job_naming_the_key_and_line(tmp_path):
    text = (ROOT / "config" / "test.yaml").read_text() + "seeds: [1]\n"  # seeds is set above too
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    res = _snakemake(tmp_path, path, "-n")
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "duplicate key 'seeds'" in out and str(path) in out, out[-2000:]
    assert not (tmp_path / "data").exists()


def test_training_waits_for_its_dataset_to_pass_verification(tmp_path):
    plan = build_plan(load_config(TEST_CONFIG))
    run = sorted(plan.runs)[0]
    res = _snakemake(tmp_path, TEST_CONFIG, f"results/models/{run}/s0/model.pt", "-n", "--quiet", "rules")
    assert res.returncode == 0, res.stderr[-3000:]
    assert _job_stats(res.stdout + res.stderr)["verify_dataset"] == 1
    dvc = yaml.safe_load(generate(load_config(TEST_CONFIG), "config/test.yaml")[0])["stages"]
    assert f"results/data/{plan.runs[run].dataset}.verify.json" in dvc[f"train-{run}"]["deps"]


def test_each_training_job_of_the_embedded_default_declares_exactly_its_runs_seeds(tmp_path):
    """seeds_by_experiment gives runs of one seed beside runs of three: Snakemake must expect
    exactly the model files each job writes, or a finished job fails as missing its outputs."""
    config = load_config(ROOT / "config" / "config.yaml") | {"experiments": experiment_names()}
    expected = {run_id: set(job.outputs) for run_id, job in jobs(build_plan(config), config, "c").get(
        "train").items()}  # fmt: skip
    assert {len(paths) for paths in expected.values()} == {1, 3}  # both kinds of run are there
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    res = _snakemake(tmp_path, tmp_path / "config.yaml", "-n", "--forceall")
    assert res.returncode == 0, res.stderr[-3000:]
    declared = {}
    for block in re.split(r"\n(?=(?:local)?rule )", res.stdout + res.stderr):
        run = re.search(r"wildcards: run=(\S+)", block)
        if block.startswith(("rule train", "localrule train")) and run:
            declared[run.group(1)] = set(re.search(r"output: (.+)", block).group(1).split(", "))
    assert declared == expected


# The networks config/paper.yaml must train, written down from the papers' tables (not from
# camrepro.plan), each with the box settings its table rows need:
# * CAM Tables 1-3 (ImageNet): GAP/GMP networks at the 20 % threshold (VGGnet-GAP the CAM paper's
#   own, vgg16-cam), GoogLeNet-GAP also with the tight/loose heuristic (Table 3), Backprop on the
#   original GoogLeNet, VGGnet and AlexNet.
# * Rethinking CAM Table 3 (CUB and ImageNet): VGG16 with GAP and TAP, each at base / NWC / PaS /
#   NWC + PaS.
# * Rethinking CAM Table 2 (CUB and ImageNet): four backbones, the baseline (GAP, 20 %) and all
#   three fixes (TAP + NWC + PaS); VGG16's two networks are Table 3's.
# * CAM Tables 4-5 (SVMs on fixed ImageNet features) reuse ImageNet networks above: no new runs.
ABLATION_SETTINGS = {"cam20", "nwc", "pas", "nwc-pas"}
PAPER_NETWORKS = {
    ("imagenet", "vgg16-cam", "gap"): {"cam20"},
    ("imagenet", "googlenet-gap", "gap"): {"cam20", "heuristic"},
    ("imagenet", "alexnet-gap", "gap"): {"cam20"},
    ("imagenet", "alexnet*-gap", "gap"): {"cam20"},
    ("imagenet", "googlenet-gmp", "gmp"): {"cam20"},
    ("imagenet", "googlenet", "gap"): {"cam20", "backprop"},
    ("imagenet", "vgg16", "fc"): {"backprop"},
    ("imagenet", "alexnet", "fc"): {"backprop"},
    ("imagenet", "vgg16-gap", "gap"): ABLATION_SETTINGS,
    ("imagenet", "vgg16-gap", "tap"): ABLATION_SETTINGS,
    ("cub", "vgg16-gap", "gap"): ABLATION_SETTINGS,
    ("cub", "vgg16-gap", "tap"): ABLATION_SETTINGS,
    **{
        (dataset, backbone, pool): {setting}
        for dataset in ("imagenet", "cub")
        for backbone in ("resnet50-se", "mobilenet-v1", "inception-v3-spg")
        for pool, setting in (("gap", "cam20"), ("tap", "nwc-pas"))
    },
}  # fmt: skip
# What each paper evaluates, with its own test-time transform: CAM Tables 1-3 (ten crops) with the
# text's and the released code's boxes (CAM Table 3: the heuristic both ways), Rethinking-CAM (centre crop).
_CAM_EVALUATED = {
    ("imagenet", "vgg16-cam", "gap"): {"cam20", "cam-code"},
    ("imagenet", "googlenet-gap", "gap"): {"cam20", "cam-code", "heuristic", "heuristic-code"},
    ("imagenet", "alexnet-gap", "gap"): {"cam20", "cam-code"},
    ("imagenet", "alexnet*-gap", "gap"): {"cam20", "cam-code"},
    ("imagenet", "googlenet-gmp", "gmp"): {"cam20", "cam-code"},
    ("imagenet", "googlenet", "gap"): {"cam20", "cam-code", "backprop", "backprop-code"},
    ("imagenet", "vgg16", "fc"): {"backprop", "backprop-code"},
    ("imagenet", "alexnet", "fc"): {"backprop", "backprop-code"},
}
PAPER_EVALUATIONS = {(*k, "tencrop"): v for k, v in _CAM_EVALUATED.items()} | {
    (*k, "centercrop"): v for k, v in PAPER_NETWORKS.items() if k not in _CAM_EVALUATED
}


def test_paper_config_dry_run_has_every_job_of_the_registry(tmp_path):
    config = ROOT / "config" / "paper.yaml"
    res = _snakemake(tmp_path, config, "-n", "--quiet", "rules")
    assert res.returncode == 0, res.stderr[-3000:]
    stats = _job_stats(res.stdout + res.stderr)
    assert len(PAPER_NETWORKS) == 24  # 8 CAM + 4 VGG16 of Rethinking CAM (ablation) + 12 more backbones
    # config/paper.yaml lists 11 datasets: CUB, ImageNet, the 8 transfer sets of CAM Table 5 and the photos
    assert stats["prepare_real_dataset"] == stats["verify_dataset"] == 11
    # vgg16, googlenet, alexnet from torchvision (V1); se-resnet50 (SENet's release), mobilenet-v1
    # (timm's) and inception-v3 (torchvision's, SPG's Inception-v3) for the Rethinking-CAM backbones:
    # every one a download (camrepro.weights.CHECKPOINTS); efficientnet-lite0 from its package
    assert stats["weights"] == 7
    # one training per network but the CAM paper's originals (GoogLeNet, VGGnet, AlexNet: the ImageNet
    # networks with their own heads, used as they are); one extraction and one evaluation (all of its
    # settings) per network, with its paper's test-time transform (CAM: ten crops; Rethinking CAM:
    # centre crop); the real network on the photos is extracted and evaluated as it is
    assert stats["train"] == 24 - 3
    assert stats["extract"] == stats["evaluate"] == 25
    # SVMs: CUB crops on GoogLeNet-GAP (Table 4), transfer on GoogLeNet-GAP, GoogLeNet, AlexNet (Table 5)
    assert stats["svm"] == 4
    assert stats["tables"] == stats["report"] == 1
    # the plan behind the dry run: exactly these networks, each evaluated at exactly its settings
    plan = build_plan(load_config(config))
    settings = {}
    for ev in plan.evaluations.values():
        ext = plan.extractions[ev.extraction]
        if ext.run is None:  # the photos' network
            continue
        run = plan.runs[ext.run]
        assert bool(ext.as_is) == run.as_is == (run.model in ("googlenet", "vgg16", "alexnet")), run.id
        settings[(run.dataset, run.model, run.pool, ext.transform)] = set(ev.settings)
        assert ev.empty_box == ("zero" if ext.transform == "tencrop" else "full")  # CAM: (0,0,0,0); Rethinking
    assert settings == PAPER_EVALUATIONS
    assert plan.as_is("real-photos").dataset == "skimage-photos"
    assert {(r.dataset, r.model, r.pool) for r in plan.runs.values()} == set(PAPER_NETWORKS)
    svms = {
        (j.kind, plan.runs[j.run].model, plan.runs[j.run].dataset, len(j.datasets))
        for j in plan.svms.values()
    }
    assert svms == {("cub", "googlenet-gap", "imagenet", 1), ("transfer", "googlenet-gap", "imagenet", 8),
                    ("transfer", "googlenet", "imagenet", 8), ("transfer", "alexnet", "imagenet", 8)}  # fmt: skip


@pytest.mark.parametrize(
    "edit, needle",
    [
        ({"learning_rate": 0.1}, "Additional properties are not allowed ('learning_rate' was unexpected)"),
        ({"seeds": "three"}, "seeds: 'three' is not of type 'array'"),
        (
            {"roles": {"imagenet": "synthetic-imagenet", "cub": "cub200"}},
            "roles.cub: dataset 'cub200' is not configured",
        ),
        ({"gpus_per_job": 0}, "gpus_per_job: 0 is less than the minimum of 1"),
    ],
)
def test_a_bad_config_fails_before_any_job(tmp_path, edit, needle):
    config = yaml.safe_load((ROOT / "config" / "test.yaml").read_text()) | edit
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    res = _snakemake(tmp_path, path, "-n")
    assert res.returncode != 0
    assert needle in res.stdout + res.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "results").exists()


def test_committed_dvc_files_are_what_the_registry_generates():
    dvc_text, params_text = generate(load_config(ROOT / "config" / "config.yaml"), "config/config.yaml")
    assert (ROOT / "dvc.yaml").read_text() == dvc_text, "run `camrepro workflow dvc` and commit dvc.yaml"
    assert (ROOT / "params.yaml").read_text() == params_text, (
        "run `camrepro workflow dvc` and commit params.yaml"
    )


def _fresh_clone(repo: Path) -> None:
    """The files a `git clone` of this working tree has: tracked and untracked-but-not-ignored ones.

    Copying a hand-picked list hid that `.gitignore` made DVC refuse to run (dvc.lock ignored).
    """
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout.split("\0")  # fmt: skip
    for name in filter(None, names):
        src = ROOT / name
        if src.is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, repo / name)


def _ran_stages(stdout: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", stdout))


@pytest.mark.slow
def test_dvc_repro_on_a_fresh_clone_runs_then_does_nothing_then_reruns_only_what_a_change_touches(tmp_path):
    dvc, git = _tool("dvc"), shutil.which("git")
    repo = tmp_path / "repo"
    repo.mkdir()
    _fresh_clone(repo)
    env = _env()

    def run(*cmd: str) -> subprocess.CompletedProcess:
        res = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, env=env)
        assert res.returncode == 0, (cmd, res.stdout[-2000:], res.stderr[-2000:])
        return res

    run(git, "init", "-q")
    run(sys.executable, "-m", "camrepro", "workflow", "dvc", "--config", "config/test.yaml")
    run(git, "add", "-A")
    run(git, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "test config")
    first = run(dvc, "repro")
    assert (repo / "results" / "tables" / "metrics.csv").exists()
    assert (repo / "results" / "tables" / "rethinking-table3.csv").exists()
    assert "Rethinking-CAM Table 3" in (repo / "reports" / "replication.html").read_text()
    assert _ran_stages(first.stdout) == set(yaml.safe_load((repo / "dvc.yaml").read_text())["stages"])
    assert _ran_stages(run(dvc, "repro").stdout) == set()  # a second repro does nothing
    assert "up to date" in run(dvc, "status").stdout
    weights = repo / "data" / "weights" / "vgg16.pth"
    stamp = weights.stat().st_mtime_ns

    # A changed config, regenerated: only the stages whose params changed are out of date.
    config = yaml.safe_load((repo / "config" / "test.yaml").read_text())
    config["training"]["cub"]["epochs"] = 3  # one training option of one role
    (repo / "config" / "test.yaml").write_text(yaml.safe_dump(config))
    run(sys.executable, "-m", "camrepro", "workflow", "dvc", "--config", "config/test.yaml")
    changed = set(json.loads(run(dvc, "status", "--json").stdout))
    plan = build_plan(config)
    # the changed option is a param of the CUB training runs only (and the tables read the config);
    # extraction and evaluation follow from the new models; data, weights and the ImageNet run stay
    cub_runs = {r for r, run in plan.runs.items() if run.dataset == "synthetic-cub"}
    assert cub_runs and len(cub_runs) < len(plan.runs)
    assert changed == {f"train-{r}" for r in cub_runs} | {"tables", "report"}
    cub_evaluation = next(v for v, x in sorted(plan.evaluations.items())
                          if plan.extractions[x.extraction].run in cub_runs)  # fmt: skip
    some_metrics = repo / "results" / "metrics" / f"{cub_evaluation}.json"
    before = some_metrics.stat().st_mtime_ns
    run(dvc, "repro", "--quiet")
    assert weights.stat().st_mtime_ns == stamp
    assert some_metrics.stat().st_mtime_ns != before
    run(git, "add", "-A")
    run(git, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "3 epochs")

    # `dvc exp run -S` on one run's training option: that run is retrained with the new value
    # (the command reads it from params.yaml), what depends on it follows, nothing else runs.
    target = sorted(cub_runs)[0]
    exp = run(dvc, "exp", "run", "-S", f"runs.{target}.train.epochs=1")
    ran = _ran_stages(exp.stdout)
    downstream = {f"extract-{e}" for e, x in plan.extractions.items() if x.run == target}
    downstream |= {
        f"evaluate-{v}" for v, x in plan.evaluations.items() if f"extract-{x.extraction}" in downstream
    }
    downstream |= {f"svm-{j}" for j, x in plan.svms.items() if x.run == target}
    assert f"train-{target}" in ran and ran <= {f"train-{target}", *downstream, "tables", "report"}
    log = (seed_dir(repo / "results" / "models" / target, plan.seeds[0]) / "log.jsonl").read_text().splitlines()
    assert sum(json.loads(line)["event"] == "epoch" for line in log) == 1
    shown = run(dvc, "exp", "show", "--json").stdout
    assert f"runs.{target}.train.epochs" in shown or '"epochs": 1' in shown
    assert "gt_known_loc" in shown  # the metrics are listed


def test_snakemake_lint_and_snakefmt_are_clean():
    lint = subprocess.run([_tool("snakemake"), "--lint", "--configfile", "config/test.yaml"], cwd=ROOT,
                          capture_output=True, text=True, env=_env())  # fmt: skip
    assert "Congratulations, your workflow is in a good condition!" in lint.stdout + lint.stderr, lint.stdout[
        -2000:
    ]
    files = [
        "Snakefile",
        *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "workflow" / "rules").glob("*.smk")),
    ]
    fmt = subprocess.run([_tool("snakefmt"), "--check", *files], cwd=ROOT, capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stderr


def test_a_missing_imagenet_archive_fails_its_branch_with_instructions_and_spares_the_others(tmp_path):
    config = {
        "scale": "paper",
        "datasets": {
            "imagenet": {"source": "imagenet"},
            "synthetic-cub": {"synthetic": {"preset": "synthetic-cub", "seed": 0, "scale": 0.05}},
        },
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(config))
    targets = ["results/data/imagenet.verify.json", "results/data/synthetic-cub.verify.json"]
    res = _snakemake(tmp_path, path, "--keep-going", *targets)
    assert res.returncode != 0
    log = (tmp_path / "logs" / "data" / "imagenet.log").read_text()
    assert "ILSVRC2012_img_val.tar" in log and "ILSVRC2012_img_train.tar" in log  # what to place, and where
    assert (tmp_path / "results" / "data" / "synthetic-cub.verify.json").exists()
    assert not (tmp_path / "data" / "prepared" / "imagenet").exists()


def test_a_user_supplied_weights_file_is_an_input_that_no_forced_or_failing_job_deletes(tmp_path):
    """models.weights.<arch>: file makes data/weights/<arch>.pth the user's: no job writes it, so a
    rerun of the weights jobs (as after a code change) cannot remove it, and the runs read it."""
    config = yaml.safe_load(TEST_CONFIG.read_text())
    config["experiments"] = ["rethinking-backbones-cub"]
    config["models"]["weights"] = {"mobilenet-v1": "file"}
    cfg = tmp_path / "user-weights.yaml"
    cfg.write_text(yaml.safe_dump(config))
    user = tmp_path / "data" / "weights" / "mobilenet-v1.pth"
    user.parent.mkdir(parents=True)
    user.write_bytes(b"the user's only copy")
    # forcing every weights job (what a code change does) cannot reach it: no rule produces it
    res = _snakemake(tmp_path, cfg, "--forcerun", "weights", "data/weights/mobilenet-v1.pth")
    assert "No rule to produce data/weights/mobilenet-v1.pth" in res.stderr, res.stderr[-3000:]
    assert user.read_bytes() == b"the user's only copy"
    plan = _snakemake(tmp_path, cfg, "-n", "--forceall", "-p")
    assert plan.returncode == 0, plan.stderr[-3000:]
    stats = _job_stats(plan.stdout + plan.stderr)
    assert stats["weights"] == 3  # vgg16, googlenet, se-resnet50; mobilenet-v1 is the user's
    out = plan.stdout + plan.stderr
    assert "output: data/weights/mobilenet-v1.pth" not in out
    assert out.count("pretrained=data/weights/mobilenet-v1.pth") == 2  # the GAP and TAP runs read it
    assert user.read_bytes() == b"the user's only copy"
