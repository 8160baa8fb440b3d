"""Where a finished workflow run's time went: job-seconds per rule, and process start-up's share.

Reads the Snakemake benchmark files a run left (`benchmarks/<rule>/<job>.tsv`, the report's run
facts) and measures, on this machine, how long one job of each rule takes to start: a fresh
interpreter importing that rule's entry module (camrepro.jobs.ENTRY), best of three. Start-up x
jobs over the rule's job-seconds is the share a job spends before its first useful step.

    .venv/bin/python bench/demo_timing.py [--workdir /tmp/demo] [--log /tmp/demo.log]

`--log` (the output of `python3 dev.py demo` or of Snakemake) adds Snakemake's wall time: the
first and the last timestamp Snakemake printed.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from camrepro.jobs import ENTRY
from camrepro.report import run_facts


def startup_seconds(kind: str, repeats: int = 3) -> float:
    """A fresh interpreter importing the entry module of `kind`, best of `repeats`."""
    module = "camrepro." + ENTRY[kind][0].removesuffix(".py").replace("/", ".")
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
        best = min(best, time.perf_counter() - start)
    return best


def snakemake_wall(log: Path) -> float | None:
    """Seconds between the first and last `[Fri Dec  4 18:09:05 2026]` stamp of a Snakemake log."""
    text = log.read_text(errors="replace")
    stamps: list[str] = re.findall(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$", text, re.M)
    if len(stamps) < 2:
        return None
    first, last = (datetime.strptime(" ".join(s.split()), "%a %b %d %H:%M:%S %Y")
                   for s in (stamps[0], stamps[-1]))  # fmt: skip
    return (last - first).total_seconds()


def kind_of(rule: str, job: str) -> str:
    """The job kind of one benchmark file. The data folder holds verification and the making of a
    dataset, generated (synthetic) or prepared (real); both start like `synthetic_dataset`."""
    if rule == "data":
        return "verify_dataset" if job.endswith(".verify") else "synthetic_dataset"
    return rule


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("."), help="the run's working directory")
    parser.add_argument("--log", type=Path, help="Snakemake's output, for its wall time")
    args = parser.parse_args()
    facts = run_facts(args.workdir / "benchmarks")
    if not facts["jobs"]:
        sys.exit(f"{args.workdir / 'benchmarks'}: no benchmark files; run the workflow there first.")
    kinds: dict[str, list[float]] = {}
    for job in facts["jobs"]:
        kinds.setdefault(kind_of(job["rule"], job["job"]), []).append(job["seconds"])
    print(f"{'job kind':<18}{'jobs':>6}{'job-s':>9}{'start-up s':>12}{'start-up share':>16}")
    total_startup = 0.0
    for kind, seconds in kinds.items():
        startup = startup_seconds(kind)
        total_startup += startup * len(seconds)
        share = startup * len(seconds) / sum(seconds)
        label = "make_dataset" if kind == "synthetic_dataset" else kind
        print(f"{label:<18}{len(seconds):>6}{sum(seconds):>9.0f}{startup:>12.2f}{share:>15.0%}")
    total = facts["total_seconds"]
    print(f"{'all':<18}{len(facts['jobs']):>6}{total:>9.0f}{'':>12}{total_startup / total:>15.0%}")
    if args.log:
        wall = snakemake_wall(args.log)
        print(f"Snakemake wall time: {wall:.0f} s" if wall is not None else f"{args.log}: no timestamps")


if __name__ == "__main__":
    main()
