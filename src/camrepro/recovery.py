"""What a killed workflow leaves behind, cleared when the next one starts.

Snakemake keeps its directory locks in `.snakemake/locks/` and deletes them when it exits; after a
SIGKILL they stay, and every later run stops with "Directory cannot be locked" until the user
passes `--unlock`. Atomic writes (`camrepro.fsutil`) leave `<name>.tmp-<pid>` siblings when their
process is killed.

The workflow's main process holds an exclusive `flock` on `.snakemake/camrepro-main.lock` for as
long as it lives (`claim_workdir`). The kernel drops the lock when that process dies, however it
dies, so a process that gets it knows that no other main Snakemake process is alive in this
folder: the Snakemake locks it finds are stale. A temporary is removed only when the process its
name carries is gone (a job orphaned by the kill may still be writing it). Only names this
package writes are touched; nothing else is ever deleted.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
from pathlib import Path
from typing import IO

MAIN_LOCK = "camrepro-main.lock"
_TEMPORARY = re.compile(r".+\.tmp-(\d+)")


def claim_workdir(state_dir: str | os.PathLike = ".snakemake") -> IO | None:
    """The open, exclusively locked claim file, or None when another main process holds it.

    Keep the returned file open for the life of the process: closing it releases the claim.
    """
    state = Path(state_dir)
    state.mkdir(parents=True, exist_ok=True)
    handle = open(state / MAIN_LOCK, "a")  # noqa: SIM115 - held open on purpose
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def clear_stale_snakemake_locks(state_dir: str | os.PathLike = ".snakemake") -> list[Path]:
    """Remove Snakemake's lock files; call only while holding `claim_workdir`'s claim."""
    locks = Path(state_dir) / "locks"
    stale = sorted(p for p in locks.glob("*.lock") if p.is_file()) if locks.is_dir() else []
    for path in stale:
        path.unlink()
    return stale


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_orphan_temporaries(roots: dict[str | os.PathLike, int]) -> list[Path]:
    """Remove `*.tmp-<pid>` files and folders whose process is gone.

    `roots` maps a folder to how many levels below it temporaries can appear (outputs sit at
    known depths; a prepared ImageNet has a million files that need no walk).
    """
    removed = []
    for root, depth in roots.items():
        removed += _sweep(Path(root), depth)
    return removed


def _sweep(folder: Path, depth: int) -> list[Path]:
    if depth < 0 or not folder.is_dir() or folder.is_symlink():
        return []
    removed = []
    for entry in sorted(folder.iterdir()):
        match = _TEMPORARY.fullmatch(entry.name)
        if match and not _alive(int(match.group(1))):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
        elif entry.is_dir():
            removed += _sweep(entry, depth - 1)
    return removed
