"""GPU claims (camrepro.gpus) with real processes and real flock'ed lock files; devices are simulated."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from camrepro import gpus
from camrepro.errors import CamreproError

# A DDP launcher as `camrepro train` runs it: claim, then start torchrun, whose workers adopt the claim.
LAUNCHER = """
import sys
from camrepro import gpus
gpus.claim_devices(int(sys.argv[1]), lock_dir=sys.argv[2])
cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1", *sys.argv[3:]]
sys.exit(gpus.run_sharing_claim(cmd))
"""

# A torchrun worker as `camrepro train` runs it (LOCAL_RANK set): adopt the claim, then "train"
# until told to stop (a bounded wait, so a failing test leaves nothing running).
WORKER = """
import os, sys, time
from pathlib import Path
from camrepro import gpus
gpus.adopt_claim()
print("worker", os.getpid(), os.environ["CUDA_VISIBLE_DEVICES"], flush=True)
for _ in range(1200):
    if Path(sys.argv[1]).exists():
        break
    time.sleep(0.05)
"""


def _env(num_gpus: str = "2") -> dict[str, str]:
    env = os.environ | {"CAMREPRO_NUM_GPUS": num_gpus}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return env


def _lock_is_free(path: Path) -> bool:
    """Try to take the lock the way a competing job would (non-blocking); give it back at once."""
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()


def test_a_killed_ddp_launcher_leaves_its_gpus_claimed_until_the_last_worker_exits(tmp_path):
    locks, stop = tmp_path / "locks", tmp_path / "stop"
    worker_py = tmp_path / "worker.py"
    worker_py.write_text(WORKER)
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, "2", str(locks), str(worker_py), str(stop)],
        env=_env(), stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    worker = None
    try:
        line = launcher.stdout.readline().split()
        assert line[0] == "worker" and line[2] == "0,1", line
        worker = int(line[1])
        os.kill(launcher.pid, signal.SIGKILL)
        launcher.wait(timeout=30)
        assert _alive(worker)
        # The worker (torchrun's child, in its own session, with no inherited descriptors)
        # still holds both claims: a competing job can take neither GPU.
        assert not _lock_is_free(locks / "gpu0.lock")
        assert not _lock_is_free(locks / "gpu1.lock")
        stop.touch()
        for _ in range(1200):  # bounded poll for the worker's exit (and torchrun's)
            if not _alive(worker):
                break
            time.sleep(0.05)
        assert not _alive(worker)
        for _ in range(1200):
            if _lock_is_free(locks / "gpu0.lock") and _lock_is_free(locks / "gpu1.lock"):
                break
            time.sleep(0.05)
        assert _lock_is_free(locks / "gpu0.lock") and _lock_is_free(locks / "gpu1.lock")
    finally:
        stop.touch()
        launcher.kill()
        launcher.wait()


def test_a_worker_whose_launcher_is_gone_refuses_to_run(monkeypatch):
    monkeypatch.setenv(gpus.CLAIM_ENV, "camrepro-gpu-claim-of-a-launcher-that-is-gone")
    with pytest.raises(CamreproError, match="launcher .* is gone"):
        gpus.adopt_claim()


@pytest.mark.parametrize("count", [0, -1])
def test_a_claim_of_no_or_negative_gpus_is_refused_at_once(tmp_path, monkeypatch, count):
    monkeypatch.setenv("CAMREPRO_NUM_GPUS", "2")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    # a short timeout: the old code waited for it (24 h by default) and then blamed busy GPUs
    with pytest.raises(CamreproError, match=rf"gpus_per_job must be at least 1, got {count}"):
        gpus.claim_devices(count, lock_dir=tmp_path, timeout=0.2, poll=0.05)


def test_more_gpus_than_exist_is_refused_without_waiting(tmp_path, monkeypatch):
    monkeypatch.setenv("CAMREPRO_NUM_GPUS", "2")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with pytest.raises(CamreproError, match=r"needs 3 GPU\(s\) but 2 are visible"):
        gpus.claim_devices(3, lock_dir=tmp_path, timeout=3600)
    # a scheduler that pinned fewer devices than the job needs
    monkeypatch.delenv("CAMREPRO_NUM_GPUS")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5")
    with pytest.raises(CamreproError, match=r"needs 2 GPU\(s\) but CUDA_VISIBLE_DEVICES=5 pins 1"):
        gpus.claim_devices(2, lock_dir=tmp_path, timeout=3600)


@pytest.mark.parametrize("value", ["abc", "-1", "1.5"])
def test_a_bad_camrepro_num_gpus_names_the_variable(monkeypatch, value):
    monkeypatch.setenv("CAMREPRO_NUM_GPUS", value)
    with pytest.raises(CamreproError, match=rf"CAMREPRO_NUM_GPUS={value!r}"):
        gpus.device_count()


CLAIM = """
import os, sys, time, types
from camrepro import gpus
def retry_sleep(seconds, said=[]):  # claim_devices sleeps only when it found too few devices free
    if not said:
        print("waiting", flush=True)
        said.append(True)
    time.sleep(seconds)
gpus.time = types.SimpleNamespace(monotonic=time.monotonic, sleep=retry_sleep)
devices = gpus.claim_devices(int(sys.argv[1]), lock_dir=sys.argv[2], timeout=float(sys.argv[3]), poll=0.05)
print(os.environ["CUDA_VISIBLE_DEVICES"], flush=True)
time.sleep(float(sys.argv[4]))
"""


def _claim(count, lock_dir, timeout, hold):
    env = os.environ | {"CAMREPRO_NUM_GPUS": "3"}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return subprocess.Popen(
        [sys.executable, "-c", CLAIM, str(count), str(lock_dir), str(timeout), str(hold)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_concurrent_jobs_get_distinct_gpus_and_a_killed_job_frees_its_gpu(tmp_path):
    jobs = [_claim(1, tmp_path, 30, 60) for _ in range(3)]  # held until killed below
    seen = [job.stdout.readline().strip() for job in jobs]
    assert sorted(seen) == ["0", "1", "2"]
    waiting = _claim(1, tmp_path, 30, 0)  # all three taken: it finds none free and waits ...
    assert waiting.stdout.readline().strip() == "waiting"
    assert waiting.poll() is None  # it said so and is retrying: no device, no error
    victim = seen.index("1")
    os.kill(jobs[victim].pid, signal.SIGKILL)  # ... until a holder dies, however it dies
    assert waiting.stdout.readline().strip() == "1"
    waiting.wait(timeout=30)
    for job in jobs:
        job.kill()
        job.wait()
    pair = _claim(2, tmp_path, 10, 0)
    assert sorted(pair.stdout.readline().strip().split(",")) == ["0", "1"]
    pair.wait(timeout=30)
    too_many = _claim(4, tmp_path, 1, 0)
    _, err = too_many.communicate(timeout=30)
    assert too_many.returncode != 0 and "needs 4 GPU(s) but 3 are visible" in err
