"""One GPU per job: lock-based device assignment for concurrently running jobs.

`snakemake --resources gpu=N` only counts GPUs; it never says which one a job should use. Each
GPU job therefore claims devices itself, before CUDA starts: it takes an exclusive `flock` on
``<lock_dir>/gpu<i>.lock`` for the first free device(s) and sets ``CUDA_VISIBLE_DEVICES``. The
kernel drops a flock when its process ends, however it ends (crash, SIGKILL, node reboot), so an
assignment can never go stale. Jobs that find every device taken wait and retry.

Device count: ``CAMREPRO_NUM_GPUS`` if set (tests simulate devices with it), else the number of
GPUs ``nvidia-smi -L`` lists. A scheduler that already pinned the job (CUDA_VISIBLE_DEVICES set,
e.g. Slurm) is respected and nothing is claimed.

DDP jobs: the claim must last as long as any process that uses the GPUs, not just the launcher
(`camrepro train` claims, then runs torchrun, whose workers train). torchrun starts its workers
with ``close_fds`` and in new sessions, so neither inherited lock descriptors nor the launcher's
process group reach them, and PR_SET_PDEATHSIG would still free the lock before the killed
workers let go of the GPU. Instead the launcher hands its lock descriptors to each worker over a
Unix socket (SCM_RIGHTS, `run_sharing_claim` / `adopt_claim`): the worker then holds the *same*
open file description, and the kernel keeps a flock until the last descriptor of it is closed,
i.e. until the last holder exits, however the others die. A worker that cannot adopt the claim
(its launcher is already gone) refuses to run. The socket is in Linux's abstract namespace (no
file to clean up after a SIGKILL) and serves only this user's processes; CUDA DDP runs on Linux
only (elsewhere the claim is not shared and lasts as long as the launcher).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

from camrepro.errors import CamreproError

DEFAULT_LOCK_DIR = Path(os.environ.get("CAMREPRO_GPU_LOCK_DIR", "/tmp/camrepro-gpu-locks"))
_held: list[IO] = []  # open lock files: the claim lasts as long as this process
CLAIM_ENV = "CAMREPRO_GPU_CLAIM"  # abstract socket name a DDP worker adopts its launcher's claim from


def device_count() -> int:
    env = os.environ.get("CAMREPRO_NUM_GPUS")
    if env is not None:
        try:
            count = int(env)
        except ValueError:
            count = -1
        if count < 0:
            raise CamreproError(
                f"CAMREPRO_NUM_GPUS={env!r}: expected a whole number of GPUs (0 or more); "
                "fix or unset the variable."
            )
        return count
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
    if not isinstance(count, int) or count < 1:
        raise CamreproError(
            f"gpus_per_job must be at least 1, got {count!r}; fix the config or --gpus-per-job."
        )
    pinned = os.environ.get("CUDA_VISIBLE_DEVICES")
    if pinned is not None and "CAMREPRO_NUM_GPUS" not in os.environ:
        visible = [d for d in pinned.split(",") if d.strip()]
        if visible and len(visible) < count:
            raise CamreproError(
                f"this job needs {count} GPU(s) but CUDA_VISIBLE_DEVICES={pinned} pins {len(visible)}; "
                "lower gpus_per_job in the config or let the scheduler give the job more GPUs."
            )
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


def run_sharing_claim(cmd: list[str]) -> int:
    """Run `cmd` (torchrun) and hand this process's GPU claim to every worker that asks for it.

    Returns the command's exit status. Without a claim (CPU DDP) the command simply runs.
    """
    if not _held or not sys.platform.startswith("linux"):
        return subprocess.run(cmd, check=False).returncode
    name = f"camrepro-gpu-claim-{os.getpid()}-{secrets.token_hex(8)}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind("\0" + name)
    server.listen()
    fds = [handle.fileno() for handle in _held]

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:  # closed: the command has ended
                return
            with conn:  # only to this user's processes (the abstract namespace has no permissions)
                _, uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
                if uid == os.getuid():
                    socket.send_fds(conn, [b"claim"], fds)

    threading.Thread(target=serve, daemon=True).start()
    try:
        return subprocess.run(cmd, env=os.environ | {CLAIM_ENV: name}, check=False).returncode
    finally:
        with contextlib.suppress(OSError):  # wakes the blocked accept()
            server.shutdown(socket.SHUT_RDWR)
        server.close()


def adopt_claim() -> None:
    """In a DDP worker: hold the launcher's GPU locks too (no-op unless the launcher shares a claim)."""
    name = os.environ.get(CLAIM_ENV)
    if not name:
        return
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect("\0" + name)
            _, fds, _, _ = socket.recv_fds(conn, 16, 64)
    except OSError as exc:
        fds, why = [], str(exc)
    else:
        why = "it sent no locks"
    if not fds:
        raise CamreproError(
            f"the launcher that claimed GPU(s) {os.environ.get('CUDA_VISIBLE_DEVICES', '?')} for this DDP "
            f"worker is gone ({why}); this worker stops rather than use GPUs nobody holds. Rerun the job."
        )
    _held.extend(os.fdopen(fd, "a+") for fd in fds)
