# Shared helpers and config-derived lists for the rule files.

import os
import re
import sys

from camrepro import gpus, recovery
from camrepro.config import load_yaml, validate_config
from camrepro.jobs import jobs, table_outputs
from camrepro.layout import model_file
from camrepro.plan import build_plan, run_dir
from camrepro.plan import shell as command_line  # not `shell`: that is Snakemake's

# The config file the tables and report rules re-read: the last --configfile given.
CONFIG_FILE = os.path.relpath(
    (workflow.overwrite_configfiles or ["config/config.yaml"])[-1]
)
# Fail before any job starts when the config is wrong. Snakemake's own loader keeps the last of
# two equal keys and accepts any encoding: each config file is read again with camrepro's, which
# refuses both, naming the file and line; then unknown keys, wrong types, bad references.
for _configfile in workflow.overwrite_configfiles or ["config/config.yaml"]:
    load_yaml(_configfile)
validate_config(config, CONFIG_FILE)
PLAN = build_plan(config)
# Every job's inputs, outputs and command (camrepro.jobs; dvc.yaml is generated from the same).
JOBS = jobs(PLAN, config, CONFIG_FILE)
TABLE_OUTPUTS = list(table_outputs())

DATA = config.get("data_root", "data")

# A Snakemake killed with SIGKILL leaves its directory locks and the jobs' temporaries behind;
# the main process claims the folder for its lifetime and, if no other one holds it, clears them
# (camrepro.recovery), so a plain rerun resumes without --unlock.
if workflow.is_main_process:
    MAIN_CLAIM = recovery.claim_workdir(".snakemake")
    if MAIN_CLAIM is not None:
        for path in recovery.clear_stale_snakemake_locks(".snakemake"):
            print(
                f"camrepro: removed the stale lock {path} (its Snakemake is gone)",
                file=sys.stderr,
            )
        for path in recovery.remove_orphan_temporaries(
            {DATA: 2, "results": 4, "reports": 2}
        ):
            print(f"camrepro: removed {path}, left by a killed job", file=sys.stderr)
THREADS = int(config.get("threads", 1))
GPUS_PER_JOB = int(config.get("gpus_per_job", 1))
# Jobs ask for the `gpu` resource only where GPUs exist, so a CPU-only machine is not blocked.
GPU_JOBS = gpus.device_count() > 0
# the package sources, declared as rule inputs so a code change reruns what it affects
CODE = os.path.relpath(os.path.join(workflow.basedir, "src", "camrepro"))


def _inputs(kind, job_id):
    """The job's named input groups, plus the package sources it runs (`code`)."""
    job = JOBS[kind][job_id]
    code = [os.path.normpath(os.path.join(CODE, p)) for p in job.code]
    return {**{name: list(paths) for name, paths in job.inputs.items()}, "code": code}


def _cmd(kind, job_id):
    """The job's `camrepro` command line (dvc.yaml runs the same)."""
    return command_line(list(JOBS[kind][job_id].command))


def _params(kind, job_id):
    """The job's params.yaml entry: a change reruns the job (DVC tracks the same entry)."""
    job = JOBS[kind][job_id]
    if job.params is None:
        return None
    group, _, name = job.params.partition(".")
    return PLAN.job_params(group, name) if group in PLAN.KINDS else config[group][name]


def _alternatives(names):
    names = list(names)
    return (
        "|".join(re.escape(n) for n in names) if names else "(?!x)x"
    )  # nothing matches
