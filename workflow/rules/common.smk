# Shared helpers and config-derived lists for the rule files.

import os
import re
import sys

from camrepro import gpus, recovery
from camrepro.config import load_yaml, validate_config
from camrepro.layout import model_file
from camrepro.plan import CODE as CODE_OF
from camrepro.plan import build_plan, command, model_paths, run_dir
from camrepro.plan import shell as command_line
from camrepro.tables import TABLE_NAMES  # not `shell`: that is Snakemake's

# The config file the tables and report rules re-read: the last --configfile given.
CONFIG_FILE = (workflow.overwrite_configfiles or ["config/config.yaml"])[-1]
# Fail before any job starts when the config is wrong. Snakemake's own loader keeps the last of
# two equal keys and accepts any encoding: each config file is read again with camrepro's, which
# refuses both, naming the file and line; then unknown keys, wrong types, bad references.
for _configfile in workflow.overwrite_configfiles or ["config/config.yaml"]:
    load_yaml(_configfile)
validate_config(config, CONFIG_FILE)
PLAN = build_plan(config)

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
SYNTHETIC = [n for n, d in config["datasets"].items() if "synthetic" in d]
REAL = [n for n, d in config["datasets"].items() if "source" in d]


def src(*paths):
    """Package source files, declared as inputs so a code change reruns what it affects."""
    return [os.path.normpath(os.path.join(CODE, p)) for p in paths]


def _cmd(kind, job_id):
    """The job's `camrepro` command line, from the registry (dvc.yaml runs the same)."""
    return command_line(command(PLAN, kind, job_id, DATA))


def _code(kind):
    return src(*CODE_OF[kind])


def _alternatives(names):
    names = list(names)
    return (
        "|".join(re.escape(n) for n in names) if names else "(?!x)x"
    )  # nothing matches
