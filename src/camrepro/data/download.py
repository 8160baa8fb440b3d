"""Verified, resumable downloads and safe archive extraction.

`download` streams a URL to `<dest>.part`, resumes an interrupted `.part` with an HTTP Range
request, verifies the checksum, and only then renames the file to `dest`: a file under its final
name is always complete and verified. Where a source publishes no checksum, the SHA-256 of the
first complete download is recorded beside the file (`<dest>.sha256`, trust on first use) and every
later run is checked against it.

`safe_extract` refuses, before writing anything, archive members with absolute paths, `..` that
escapes the target, links pointing out of it, and device files; it extracts into a temporary folder
renamed into place at the end.
"""

from __future__ import annotations

import logging
import os
import stat
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from camrepro.errors import DownloadError, UnsafeArchiveError
from camrepro.fsutil import atomic_dir, atomic_write_text, file_digest

log = logging.getLogger(__name__)
CHUNK = 1 << 20


def _expected(md5: str | None, sha256: str | None, dest: Path) -> tuple[str, str] | None:
    if sha256:
        return "sha256", sha256.lower()
    if md5:
        return "md5", md5.lower()
    pinned = dest.with_name(dest.name + ".sha256")
    if pinned.exists():
        return "sha256", pinned.read_text().split()[0].lower()
    return None


def verify(path: Path, md5: str | None = None, sha256: str | None = None, url: str | None = None) -> None:
    """Check `path` against its checksum (or its pinned first-download checksum)."""
    want = _expected(md5, sha256, path)
    if want is None:
        return
    algo, digest = want
    got = file_digest(path, algo)
    if got != digest:
        raise DownloadError(
            f"{path} has {algo} {got}, expected {digest}"
            + (f" (source: {url})" if url else "")
            + ". The file is corrupt or not the published archive: delete it and run again."
        )


def download(
    url: str,
    dest: str | os.PathLike,
    md5: str | None = None,
    sha256: str | None = None,
    retries: int = 2,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download `url` to `dest` with resume, verification and an atomic final rename."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        verify(dest, md5, sha256, url)
        return dest
    part = dest.with_name(dest.name + ".part")
    attempt = 0
    while True:
        try:
            _fetch_into(url, part, timeout, progress)
            break
        except DownloadError:
            attempt += 1
            if attempt > retries:
                raise
            time.sleep(min(2.0**attempt, 30.0) if "127.0.0.1" not in url else 0.05)
            log.warning("retrying %s (attempt %d of %d), resuming", url, attempt, retries)
    want = _expected(md5, sha256, dest)
    if want is not None:
        algo, digest = want
        got = file_digest(part, algo)
        if got != digest:
            part.unlink()
            raise DownloadError(
                f"checksum mismatch for {url}: {algo} {got}, expected {digest}. The partial file "
                f"was deleted; run again, or if the source changed its archive, download it by "
                f"hand and place the verified file at {dest}."
            )
    else:
        digest = file_digest(part, "sha256")
        atomic_write_text(dest.with_name(dest.name + ".sha256"), f"{digest}  {dest.name}\n")
        log.warning("%s publishes no checksum; pinned sha256 %s for later runs", url, digest)
    os.replace(part, dest)
    return dest


def _fetch_into(url: str, part: Path, timeout: float, progress: bool) -> None:
    """Append the rest of `url` to `part` (Range request when `part` already has bytes)."""
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "camrepro"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to fetch: `part` is complete
            return
        raise DownloadError(f"download of {url} failed: HTTP {exc.code} {exc.reason}.") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(
            f"cannot reach {url} ({reason}). If this machine is offline, download the file "
            f"elsewhere and place it at {part.with_suffix('')}."
        ) from None
    with resp:
        if have and resp.status != 206:
            have = 0  # the server ignored the Range header: start over
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        mode = "ab" if have else "wb"
        got = have
        with (
            open(part, mode) as f,
            tqdm(
                total=total,
                initial=have,
                unit="B",
                unit_scale=True,
                desc=part.name[:-5],
                disable=not progress,
                leave=False,
            ) as bar,
        ):
            try:
                while block := resp.read(CHUNK):
                    f.write(block)
                    got += len(block)
                    bar.update(len(block))
            except (OSError, urllib.error.URLError) as exc:
                raise DownloadError(
                    f"download of {url} was interrupted after {got} bytes ({exc}); run again to resume."
                ) from None
    if total is not None and got < total:
        raise DownloadError(
            f"download of {url} was interrupted after {got} of {total} bytes; run again to resume."
        )


# ----------------------------------------------------------------------------- extraction


def _check_member_path(name: str, archive: Path) -> PurePosixPath:
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or (p.parts and p.parts[0].endswith(":")):
        raise UnsafeArchiveError(
            f"{archive}: member {name!r} has an absolute path; refusing to extract this archive."
        )
    depth = 0
    for part in p.parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            raise UnsafeArchiveError(
                f"{archive}: member {name!r} escapes the target folder; refusing to extract."
            )
    return p


def _check_link(member_path: PurePosixPath, target: str, archive: Path, name: str) -> None:
    link = PurePosixPath(target)
    if link.is_absolute():
        raise UnsafeArchiveError(
            f"{archive}: link {name!r} points to absolute path {target!r}; refusing to extract."
        )
    _check_member_path(str(member_path.parent / link), archive)


def check_archive(archive: str | os.PathLike) -> None:
    """Raise UnsafeArchiveError if any member would land or point outside the target folder."""
    archive = Path(archive)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                _check_member_path(info.filename, archive)
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise UnsafeArchiveError(
                        f"{archive}: member {info.filename!r} is a symbolic link; refusing."
                    )
        return
    try:
        tf = tarfile.open(archive)  # noqa: SIM115 - closed by the with-block below
    except tarfile.TarError as exc:
        raise DownloadError(f"{archive} is not a readable tar or zip archive ({exc}).") from None
    with tf:
        for m in tf.getmembers():
            p = _check_member_path(m.name, archive)
            if m.issym():
                _check_link(p, m.linkname, archive, m.name)
            elif m.islnk():
                _check_member_path(m.linkname, archive)
            elif not (m.isfile() or m.isdir()):
                raise UnsafeArchiveError(
                    f"{archive}: member {m.name!r} is a device or special file; refusing."
                )


def safe_extract(archive: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Extract `archive` into `target` (replaced atomically) after checking every member."""
    archive, target = Path(archive), Path(target)
    check_archive(archive)
    with atomic_dir(target) as tmp:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(tmp)
        else:
            with tarfile.open(archive) as tf:
                if hasattr(tarfile, "data_filter"):
                    tf.extractall(tmp, filter="data")  # a second, independent guard
                else:  # pragma: no cover - Python < 3.11.4
                    tf.extractall(tmp)
    return target
