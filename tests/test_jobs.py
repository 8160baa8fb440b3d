"""The one job generator: Snakemake's DAG and dvc.yaml both run exactly the jobs of camrepro.jobs."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from camrepro.config import load_config
from camrepro.dvcgen import generate
from camrepro.jobs import ENTRY, PACKAGE, code_of, jobs
from camrepro.plan import build_plan

ROOT = Path(__file__).resolve().parents[1]
# What only Snakemake adds to a command: the job's threads and GPUs, and the log redirect.
SNAKEMAKE_ONLY = re.compile(r"( --threads \d+ --gpus-per-job \d+)? > \S+ 2>&1$")


def _snakemake_jobs(workdir: Path, config: str) -> list[dict]:
    """Every job of a forced dry run: rule, inputs, outputs, shell command (paths relative to ROOT)."""
    snakemake = shutil.which("snakemake", path=str(Path(sys.executable).parent))
    res = subprocess.run([snakemake, "-s", str(ROOT / "Snakefile"), "--configfile", config, "--cores", "1",
                          "-n", "-p", "--forceall"], cwd=workdir, capture_output=True, text=True)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    out, found = res.stdout + res.stderr, []
    for block in re.split(r"\n(?=(?:local)?rule \w+:\n)", out):
        head = re.match(r"(?:local)?rule (\w+):\n", block)
        if not head or head.group(1) == "all":
            continue
        fields = dict(re.findall(r"^    (input|output): (.*)$", block, flags=re.MULTILINE))
        command = re.search(r"^Shell command: (.*)$", block, flags=re.MULTILINE).group(1)

        def rooted(paths: str) -> set[str]:
            return {os.path.relpath(os.path.normpath(workdir / p), ROOT) if "src/camrepro" in p else p
                    for p in paths.split(", ") if p}  # fmt: skip

        found.append({"rule": head.group(1), "inputs": rooted(fields.get("input", "")),
                      "outputs": rooted(fields["output"]), "command": SNAKEMAKE_ONLY.sub("", command)})  # fmt: skip
    return found


def _resolve(text: str, params: dict) -> str:
    """DVC's interpolation of `${a.b.c}` (dvc/parsing/interpolate.py to_str: booleans as true / false)."""

    def lookup(match: re.Match) -> str:
        node = params
        for key in match.group(1).split("."):
            node = node[key]
        return str(node).lower() if isinstance(node, bool) else str(node)

    return re.sub(r"\$\{([^}]+)\}", lookup, text)


@pytest.mark.parametrize("name", ["test.yaml", "paper.yaml"])
def test_snakemake_and_dvc_run_the_jobs_of_the_generator_and_agree(tmp_path, name):
    config_file = f"config/{name}"
    (tmp_path / "config").mkdir()
    shutil.copy(ROOT / config_file, tmp_path / config_file)
    config = load_config(ROOT / config_file)
    expected = [j for by_id in jobs(build_plan(config), config, config_file).values() for j in by_id.values()]
    dvc_text, params_text = generate(config, config_file)
    stages, params = yaml.safe_load(dvc_text)["stages"], yaml.safe_load(params_text)
    snake = _snakemake_jobs(tmp_path, config_file)
    assert sorted(j["rule"] for j in snake) == sorted(j.kind for j in expected)
    by_outputs = {frozenset(j["outputs"]): j for j in snake}
    for job in expected:
        code = {os.path.normpath(f"src/camrepro/{c}") for c in job.code}
        inputs = {p for group in job.inputs.values() for p in group} | code
        ran = by_outputs[frozenset(job.outputs)]
        assert ran["rule"] == job.kind and ran["inputs"] == inputs, job.stage
        assert shlex.split(ran["command"]) == list(job.command), job.stage
        stage = stages[job.stage]
        assert set(stage["deps"]) == inputs, job.stage
        assert set(stage.get("outs", stage.get("metrics", []))) == set(job.outputs), job.stage
        assert shlex.split(_resolve(stage["cmd"], params)) == list(job.command), job.stage
    assert len(stages) == len(expected)


def test_every_job_that_reads_a_dataset_runs_after_its_code_and_data():
    config = load_config(ROOT / "config" / "test.yaml")
    by_kind = jobs(build_plan(config), config, "config/test.yaml")
    # prepare and verify declare the sources they run (they did not in Snakemake before)
    assert "data/verify.py" in by_kind["verify_dataset"]["synthetic-cub"].code
    assert all(j.inputs["verified"] for j in by_kind["train"].values())


@pytest.mark.parametrize("scale", [0.5, {"train": 2.0}, {"train": 2.0, "test": 0.5}])
def test_a_datasets_scale_reaches_the_generator_as_the_config_gives_it(scale):
    """A per-split scale ({train: 2}) is passed on the command line as train=2, and read back as given."""
    from camrepro.cli import build_parser

    config = load_config(ROOT / "config" / "test.yaml")
    config["datasets"]["synthetic-cub"]["synthetic"]["scale"] = scale
    job = jobs(build_plan(config), config, "config/test.yaml")["synthetic_dataset"]["synthetic-cub"]
    args = build_parser().parse_args(list(job.command[1:]))
    assert args.scale == scale and args.preset == "synthetic-cub"


@pytest.mark.parametrize("kind", sorted(ENTRY))
def test_a_jobs_code_holds_every_package_module_it_loads(kind):
    """What importing a kind's entry module really loads (a fresh interpreter's sys.modules) is in the
    job's code inputs: a change to any of them reruns the job."""
    entry = ENTRY[kind][0].removesuffix(".py").replace("/", ".")
    probe = f"import sys, camrepro.{entry}; print('\\n'.join(m for m in sys.modules if m.startswith('camrepro.')))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    code = set(code_of(kind))
    files = set()
    for module in loaded.split():
        parts = module.split(".")[1:]
        rel = "/".join(parts) + ".py"
        files.add(rel if rel in code or not (PACKAGE / "/".join(parts)).is_dir() else "/".join(parts) + "/__init__.py")
    assert f"{entry.replace('.', '/')}.py" in files and len(files) > 2
    assert files <= code, sorted(files - code)
