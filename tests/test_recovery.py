"""Recovery after a killed workflow: stale Snakemake locks and orphaned temporaries, with real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from camrepro import recovery


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_claim_is_exclusive_and_freed_when_its_holder_is_killed(tmp_path):
    state = tmp_path / ".snakemake"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, camrepro.recovery as r; c = r.claim_workdir(sys.argv[1]); "
         "print(c is not None, flush=True); sys.stdin.read()", str(state)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "True"
        assert recovery.claim_workdir(state) is None  # held by a live process
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        claim = recovery.claim_workdir(state)
        assert claim is not None
        claim.close()
    finally:
        holder.kill()


def test_stale_snakemake_locks_are_cleared(tmp_path):
    locks = tmp_path / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    for name in ("0.input.lock", "0.output.lock"):
        (locks / name).write_text("results/x\n")
    removed = recovery.clear_stale_snakemake_locks(tmp_path / ".snakemake")
    assert sorted(p.name for p in removed) == ["0.input.lock", "0.output.lock"]
    assert list(locks.iterdir()) == []


def test_only_temporaries_of_dead_processes_are_removed_and_user_files_stay(tmp_path):
    dead, alive = _dead_pid(), os.getpid()
    run = tmp_path / "results" / "models" / "run" / "s0"
    run.mkdir(parents=True)
    orphan_file = run / f"model.pt.tmp-{dead}"
    orphan_dir = tmp_path / "data" / "prepared" / f"cub.tmp-{dead}"
    (orphan_dir / "train").mkdir(parents=True)
    live = run / f"checkpoint.pt.tmp-{alive}"
    kept = [run / "model.pt", run / "notes.tmp", run / f"mine.tmp-{dead}x", live]
    for path in [orphan_file, *kept]:
        path.write_text("x")
    deep = tmp_path / "data" / "prepared" / "cub" / "images" / "a" / f"img.jpg.tmp-{dead}"
    deep.parent.mkdir(parents=True)
    deep.write_text("below the depth where outputs are written: never walked")
    removed = recovery.remove_orphan_temporaries({tmp_path / "data": 2, tmp_path / "results": 4})
    assert sorted(removed) == sorted([orphan_file, orphan_dir])
    assert not orphan_file.exists() and not orphan_dir.exists()
    assert all(p.exists() for p in kept) and deep.exists()


def test_a_missing_root_is_nothing_to_do(tmp_path):
    assert recovery.remove_orphan_temporaries({tmp_path / "absent": 3}) == []
    assert recovery.clear_stale_snakemake_locks(tmp_path / "absent") == []
    assert not Path(tmp_path / "absent").exists()
