"""One GPU per job: lock-based device assignment for concurrently running jobs.

`snakemake --resources gpu=N` only counts GPUs; it never says which one a job should use. Each
GPU job therefore claims devices itself, before CUDA starts: it takes an exclusive `flock` on
``<lock_dir>/gpu<i>.lock`` for the first free device(s) and sets ``CUDA_VISIBLE_DEVICES``. The
kernel drops a flock when its process ends, however it ends (crash, SIGKILL, node reboot), so an
assignment can never go stale. Jobs that find every device taken wait and retry.

Device count: ``CAMREPRO_NUM_GPUS`` if set (tests simulate devices with it), else the number of
GPUs ``nvidia-smi -L`` lists. A scheduler that already pinned the job (CUDA_VISIBLE_DEVICES set,
e.g. Slurm) is respected and nothing is claimed.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import IO

from camrepro.errors import CamreproError

DEFAULT_LOCK_DIR = Path(os.environ.get("CAMREPRO_GPU_LOCK_DIR", "/tmp/camrepro-gpu-locks"))
_held: list[IO] = []  # open lock files: the claim lasts as long as this process


def device_count() -> int:
    env = os.environ.get("CAMREPRO_NUM_GPUS")
    if env is not None:
        return int(env)
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def claim_devices(
    count: int = 1, lock_dir: str | os.PathLike | None = None, timeout: float = 24 * 3600, poll: float = 2.0
) -> list[int]:
    """Claim `count` free devices for this process and point CUDA_VISIBLE_DEVICES at them.

    Returns the claimed device indices ([] when the scheduler already pinned the job).
    Raises CamreproError if fewer than `count` devices exist, or none frees up within `timeout`.
    """
    if "CUDA_VISIBLE_DEVICES" in os.environ and "CAMREPRO_NUM_GPUS" not in os.environ:
        return []
    total = device_count()
    if total < count:
        raise CamreproError(
            f"this job needs {count} GPU(s) but {total} are visible; lower gpus_per_job in the config "
            "or run on a machine with more GPUs."
        )
    folder = Path(lock_dir) if lock_dir is not None else DEFAULT_LOCK_DIR
    folder.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    while True:
        got: list[tuple[int, IO]] = []
        for index in range(total):
            handle = open(folder / f"gpu{index}.lock", "a+")  # noqa: SIM115 (held for the job's life)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}\n")
            handle.flush()
            got.append((index, handle))
            if len(got) == count:
                break
        if len(got) == count:
            _held.extend(h for _, h in got)
            devices = [i for i, _ in got]
            os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, devices))
            return devices
        for _, handle in got:  # not enough: give back what we took, then wait
            handle.close()
        if time.monotonic() > deadline:
            raise CamreproError(f"no free GPU in {folder} after {timeout:.0f} s; are other jobs stuck?")
        time.sleep(poll)


def release_devices() -> None:
    while _held:
        _held.pop().close()
