"""Verified, resumable downloads and safe archive extraction.

`download` streams a URL to `<dest>.part`, resumes an interrupted `.part` with an HTTP Range
request (checking that the server's `Content-Range` starts where the part ends), checks the body
against `Content-Length`, verifies the checksum, and only then renames the file to `dest`: a file
under its final name is always complete and verified. Where a source publishes no checksum, the
SHA-256 of the first complete download is recorded beside the file (`<dest>.sha256`, trust on
first use) and every later run is checked against it; an archive is read through to its end before
its bytes are trusted that way, so a short or corrupt body is never pinned.

Two environment variables point the downloads elsewhere (a local mirror, the rehearsal test):

* `CAMREPRO_MIRROR=<base URL>`: every `<scheme>://<host>/<path>` is fetched from
  `<base>/<host>/<path>`, the layout `wget -x <url>` writes, so `python -m http.server -d <folder>`
  over such a folder mirrors every publisher at once (`mirrored`).
* `CAMREPRO_CHECKSUMS=<file>`: a `sha256sum` file (`<sha256>  <path>`, one a line); the digest it
  gives for a file name replaces the registry's published checksum of that file (a mirror's
  repackaged or stand-in archives). Files it does not name keep the published checksum.

`safe_extract` refuses, before writing anything, archive members with absolute paths, paths or
links that end outside the target (following the links the archive itself creates, as the file
system would during extraction), device files, and archives that would extract to more than
`EXTRACT_LIMITS` allows; it extracts into a temporary folder renamed into place at the end.
"""

from __future__ import annotations

import bz2
import errno
import gzip
import logging
import lzma
import os
import re
import socket
import stat
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from camrepro.errors import DownloadError, UnreachableError, UnsafeArchiveError
from camrepro.fsutil import atomic_dir, atomic_write_text, file_digest

log = logging.getLogger(__name__)
CHUNK = 1 << 20
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip")
# What reading a damaged archive raises: truncated compressed streams (EOFError), bad deflate data
# (zlib.error), bad CRCs or headers (TarError, BadZipFile, BadGzipFile is an OSError), bad xz data.
# While extracting, OSError in general is left alone: a full disk is not a corrupt archive.
_DECODE_ERRORS = (
    EOFError,
    zlib.error,
    tarfile.TarError,
    zipfile.BadZipFile,
    lzma.LZMAError,
    gzip.BadGzipFile,
)
CORRUPT_ARCHIVE_ERRORS = (*_DECODE_ERRORS, OSError)
_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)")


@dataclass(frozen=True)
class ExtractLimits:
    """How much an archive may extract to, so a hostile or broken archive cannot fill the disk.

    `max_bytes` is well above the largest real archive (ImageNet's train tar, 138 GiB). Real
    archives hold JPEGs and extract to about their own size; the most compressible one (ImageNet's
    val boxes, XML) to about 15x. A run of zeros gzips about 1000x, so an extraction that passes
    `ratio_floor` bytes and `max_ratio` times the archive's size is refused as a decompression bomb.
    """

    max_bytes: int = 256 << 30
    max_ratio: float = 100.0
    ratio_floor: int = 64 << 20


EXTRACT_LIMITS = ExtractLimits()


MIRROR_ENV, CHECKSUMS_ENV = "CAMREPRO_MIRROR", "CAMREPRO_CHECKSUMS"


def mirrored(url: str) -> str:
    """`url` as fetched: from the mirror named by CAMREPRO_MIRROR, if set (module docstring)."""
    base = os.environ.get(MIRROR_ENV)
    if not base:
        return url
    parts = urllib.parse.urlsplit(url)
    return f"{base.rstrip('/')}/{parts.netloc}{parts.path}"


def listed_checksum(path: str | os.PathLike) -> str | None:
    """The sha256 CAMREPRO_CHECKSUMS gives for `path`'s file name, if the variable is set and names it."""
    listing = os.environ.get(CHECKSUMS_ENV)
    if not listing:
        return None
    found = None
    try:
        lines = Path(listing).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DownloadError(f"{CHECKSUMS_ENV}={listing}: cannot read it ({exc}); fix or unset it.") from None
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        m = re.fullmatch(r"([0-9a-fA-F]{64}) [ *](.+)", line.strip())
        if m is None:
            raise DownloadError(
                f"{listing}:{lineno}: expected '<sha256>  <file>' (sha256sum's format), got {line!r}."
            )
        if PurePosixPath(m.group(2)).name == Path(path).name:
            found = m.group(1).lower()
    return found


def _pin_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def recovery_hint(path: Path) -> str:
    """What to delete to get a fresh copy of `path`: the file and, if one was pinned, its .sha256."""
    pin = _pin_path(path)
    files = f"{path} and {pin}" if pin.exists() else str(path)
    return f"To recover, delete {files} and run again to download it afresh."


def _expected(md5: str | None, sha256: str | None, dest: Path) -> tuple[str, str] | None:
    listed = listed_checksum(dest)
    if listed:
        return "sha256", listed
    if sha256:
        return "sha256", sha256.lower()
    if md5:
        return "md5", md5.lower()
    pinned = _pin_path(dest)
    if pinned.exists():
        try:
            digest = pinned.read_text(encoding="utf-8").split()[0].lower()
        except (UnicodeDecodeError, IndexError):
            digest = ""
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise DownloadError(
                f"{pinned} holds no sha256 digest. Delete {pinned}"
                + (f" and {dest}" if dest.exists() else "")
                + " and run again to download the file afresh."
            )
        return "sha256", digest
    return None


def verify(path: Path, md5: str | None = None, sha256: str | None = None, url: str | None = None) -> None:
    """Check `path` against its checksum (or its pinned first-download checksum)."""
    want = _expected(md5, sha256, path)
    if want is None:
        return
    algo, digest = want
    got = file_digest(path, algo)
    if got != digest:
        listed = f" (from {os.environ[CHECKSUMS_ENV]})" if listed_checksum(path) else ""
        raise DownloadError(
            f"{path} has {algo} {got}, expected {digest}{listed}"
            + (f" (source: {url})" if url else "")
            + f". The file is corrupt or not the published archive. {recovery_hint(path)}"
        )


def is_archive(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def download(
    url: str,
    dest: str | os.PathLike,
    md5: str | None = None,
    sha256: str | None = None,
    retries: int = 2,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download `url` (or its mirror: `mirrored`) to `dest` with resume, verification and an atomic
    final rename.

    A transfer cut short is retried `retries` times (resuming); an unreachable host is not
    (`UnreachableError` at once: offline, every retry would fail the same way, only later)."""
    dest = Path(dest)
    url = mirrored(url)
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
        except UnreachableError:
            raise  # offline or no such host: a retry seconds later meets the same
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
            pin = _pin_path(dest)
            if listed_checksum(dest):
                listing = f"{CHECKSUMS_ENV}={os.environ[CHECKSUMS_ENV]}"
                hint = (f"The expected digest is the one {listing} lists for {dest.name}: if the file is "
                        "right, correct that line.")  # fmt: skip
            elif md5 or sha256:
                hint = (f"If the source changed its archive, download it by hand and place the verified "
                        f"file at {dest}.")  # fmt: skip
            else:
                hint = (f"If the first download (which pinned {pin}) was bad or the source changed its file, "
                        f"delete {pin} and run again.")  # fmt: skip
            raise DownloadError(
                f"checksum mismatch for {url}: {algo} {got}, expected {digest}. The partial file "
                f"was deleted; run again. {hint}"
            )
    else:
        if is_archive(dest.name):
            problem = _incomplete_archive(part)
            if problem:
                part.unlink()
                raise DownloadError(
                    f"download of {url} is not a complete archive ({problem}). It was deleted and "
                    f"nothing was pinned; run again, or download {url} by hand and place it at {dest}."
                )
        digest = file_digest(part, "sha256")
        atomic_write_text(_pin_path(dest), f"{digest}  {dest.name}\n")
        log.warning("%s publishes no checksum; pinned sha256 %s for later runs", url, digest)
    os.replace(part, dest)
    return dest


def _content_range(value: str | None) -> tuple[int | None, int | None, int | None] | None:
    """(start, end, total) of a `Content-Range` header (None for `*`); None if absent or malformed."""
    m = _CONTENT_RANGE.fullmatch(value.strip()) if value else None
    if m is None:
        return None
    start, end, total = (None if v in (None, "*") else int(v) for v in m.groups())
    return start, end, total


def _unreachable(reason: object) -> bool:
    """Whether a failed connection means the host is unreachable (refused, unknown name, no route)
    rather than slow: the ones a retry within seconds cannot fix."""
    return isinstance(reason, ConnectionRefusedError | socket.gaierror) or (
        isinstance(reason, OSError) and reason.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH)
    )


def _fetch_into(url: str, part: Path, timeout: float, progress: bool) -> None:
    """Append the rest of `url` to `part` (Range request when `part` already has bytes)."""
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "camrepro"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to fetch: `part` is complete, if its size is right
            rng = _content_range(exc.headers.get("Content-Range"))
            if rng is None or rng[2] in (None, have):
                return
            part.unlink()
            raise DownloadError(
                f"{part} has {have} bytes but {url} has {rng[2]}: the partial file is not from this "
                "file and was deleted; run again to download it afresh."
            ) from None
        raise DownloadError(f"download of {url} failed: HTTP {exc.code} {exc.reason}.") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        error = UnreachableError if _unreachable(reason) else DownloadError
        raise error(
            f"cannot reach {url} ({reason}). If this machine is offline, download the file "
            f"elsewhere and place it at {part.with_suffix('')}."
        ) from None
    with resp:
        length = resp.headers.get("Content-Length")
        if length is not None and not length.strip().isdigit():
            raise DownloadError(f"{url} sent an invalid Content-Length {length!r}; run again later.")
        length = int(length) if length is not None else None
        if have and resp.status == 206:
            header = resp.headers.get("Content-Range")
            rng = _content_range(header)
            if (
                rng is None
                or rng[0] != have
                or (rng[2] is not None and rng[1] != rng[2] - 1)
                or (length is not None and length != rng[1] - rng[0] + 1)
            ):
                part.unlink()  # appending would splice the wrong bytes into the file
                raise DownloadError(
                    f"{url} answered a request for bytes {have}- with Content-Range {header!r} "
                    f"(Content-Length {length}); the partial file {part} was deleted so the next "
                    "attempt starts over."
                )
        elif have:
            have = 0  # the server ignored the Range header: start over
        total = have + length if length is not None else None
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
    if total is not None and got != total:
        raise DownloadError(
            f"download of {url} was interrupted after {got} of {total} bytes; run again to resume."
        )


# ----------------------------------------------------------------------------- archive integrity


class _LastBlock:
    """A read-only file wrapper that keeps the last tar block read: tarfile ends its member list
    silently at a missing or garbage header, and the block it stopped at tells the two apart from
    a proper end-of-archive marker without seeking back (which re-decompresses a .tgz from the start).
    """

    def __init__(self, f) -> None:
        self.f, self.last = f, b""

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        if n == tarfile.BLOCKSIZE:
            self.last = data
        return data

    def seek(self, *args) -> int:
        return self.f.seek(*args)

    def tell(self) -> int:
        return self.f.tell()


def _open_decompressed(path: Path):
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic.startswith(b"\x1f\x8b"):
        return gzip.open(path, "rb")
    if magic.startswith(b"BZh"):
        return bz2.open(path, "rb")
    if magic.startswith(b"\xfd7zXZ\x00"):
        return lzma.open(path, "rb")
    return open(path, "rb")


def _incomplete_archive(path: Path) -> str | None:
    """Why the tar/zip archive `path` is not complete and readable (None if it is): reads every member."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    with zf.open(info) as f:
                        while f.read(CHUNK):  # the CRC is checked at the member's end
                            pass
            return None
        with _open_decompressed(path) as raw:
            stream = _LastBlock(raw)
            with tarfile.open(fileobj=stream, mode="r:") as tf:
                for m in tf:
                    if m.isfile():
                        f = tf.extractfile(m)
                        while f.read(CHUNK):
                            pass
                if stream.last != bytes(tarfile.BLOCKSIZE):
                    return "it ends without a tar end-of-archive marker: truncated or corrupt"
            while raw.read(CHUNK):  # the compressed stream's end: its CRC and length
                pass
    except CORRUPT_ARCHIVE_ERRORS as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


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


class _LinkTree:
    """The symbolic links an archive creates, to resolve paths as the file system would mid-extraction.

    Paths are tuples of components relative to the target folder. Resolving follows every link seen
    so far (also one at the last component, conservatively: writing a file onto a link writes
    through it), and raises if the result leaves the target.
    """

    MAX_HOPS = 40  # as the kernel's ELOOP limit

    def __init__(self, archive: Path) -> None:
        self.archive = archive
        self.links: dict[tuple[str, ...], tuple[str, ...]] = {}

    def resolve(self, parts: tuple[str, ...], what: str, follow_last: bool = True) -> tuple[str, ...]:
        stack: list[str] = []
        todo = list(parts)
        hops = 0
        while todo:
            part = todo.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if not stack:
                    raise UnsafeArchiveError(
                        f"{self.archive}: {what} ends outside the target folder (following the "
                        "archive's own links); refusing to extract this archive."
                    )
                stack.pop()
                continue
            stack.append(part)
            target = self.links.get(tuple(stack))
            if target is not None and (todo or follow_last):
                hops += 1
                if hops > self.MAX_HOPS:
                    raise UnsafeArchiveError(
                        f"{self.archive}: {what} goes through a loop of symbolic links; refusing to extract."
                    )
                stack.pop()
                todo[:0] = target
        return tuple(stack)

    def add_symlink(self, member: PurePosixPath, target: str, name: str) -> None:
        link = PurePosixPath(target)
        if link.is_absolute():
            raise UnsafeArchiveError(
                f"{self.archive}: link {name!r} points to absolute path {target!r}; refusing to extract."
            )
        where = self.resolve(member.parts, f"link {name!r}", follow_last=False)
        if not where:
            raise UnsafeArchiveError(f"{self.archive}: link {name!r} replaces the target folder; refusing.")
        self.resolve(where[:-1] + link.parts, f"link {name!r} -> {target!r}")
        self.links[where] = link.parts

    def check_all_links(self) -> None:
        """Every link, resolved with the links defined after it too (the finished tree)."""
        for where, target in self.links.items():
            name = "/".join(where)
            self.resolve(where[:-1] + target, f"link {name!r} -> {'/'.join(target)!r}")


def _check_size(archive: Path, size: int, total: int, limits: ExtractLimits) -> None:
    """Refuse when `total` extracted bytes exceed `limits` for an archive of `size` bytes."""
    if total > limits.max_bytes:
        raise UnsafeArchiveError(
            f"{archive} extracts to at least {total} bytes, more than the limit of {limits.max_bytes} "
            "bytes; refusing to extract. If the archive is genuine, extract it by hand."
        )
    if total > limits.ratio_floor and total > limits.max_ratio * size:
        raise UnsafeArchiveError(
            f"{archive} extracts to at least {total} bytes from {size}: a compression ratio above "
            f"{limits.max_ratio:g}, as a decompression bomb has; refusing to extract. If the archive "
            "is genuine, extract it by hand."
        )


def check_archive(archive: str | os.PathLike, limits: ExtractLimits = EXTRACT_LIMITS) -> None:
    """Raise UnsafeArchiveError if any member would land or point outside the target folder, or the
    archive extracts to more than `limits` allow; DownloadError if it cannot be read."""
    archive = Path(archive)
    try:
        size = max(archive.stat().st_size, 1)
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                total = 0
                for info in zf.infolist():
                    _check_member_path(info.filename, archive)
                    if stat.S_ISLNK(info.external_attr >> 16):
                        raise UnsafeArchiveError(
                            f"{archive}: member {info.filename!r} is a symbolic link; refusing."
                        )
                    total += info.file_size  # zipfile never writes more than the declared size
                    _check_size(archive, size, total, limits)
            return
        tree = _LinkTree(archive)
        total = 0
        with tarfile.open(archive) as tf:
            for m in tf:  # lazily, so a bomb is refused before it is decompressed to its end
                p = _check_member_path(m.name, archive)
                if m.issym():
                    tree.add_symlink(p, m.linkname, m.name)
                elif m.islnk():
                    tree.resolve(p.parts, f"member {m.name!r}")
                    target = _check_member_path(m.linkname, archive)
                    tree.resolve(target.parts, f"hard link {m.name!r} -> {m.linkname!r}")
                elif m.isfile() or m.isdir():
                    tree.resolve(p.parts, f"member {m.name!r}")
                    total += m.size if m.isfile() else 0
                    _check_size(archive, size, total, limits)
                else:
                    raise UnsafeArchiveError(
                        f"{archive}: member {m.name!r} is a device or special file; refusing."
                    )
        tree.check_all_links()
    except CORRUPT_ARCHIVE_ERRORS as exc:
        raise DownloadError(
            f"{archive} is not a complete, readable tar or zip archive ({type(exc).__name__}: {exc}). "
            + recovery_hint(archive)
        ) from None


def safe_extract(
    archive: str | os.PathLike, target: str | os.PathLike, limits: ExtractLimits = EXTRACT_LIMITS
) -> Path:
    """Extract `archive` into `target` (replaced atomically) after checking every member."""
    archive, target = Path(archive), Path(target)
    check_archive(archive, limits)
    try:
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
                    while tf.fileobj.read(CHUNK):  # reach the compressed stream's CRC check
                        pass
    except tarfile.FilterError as exc:
        raise UnsafeArchiveError(
            f"{archive}: member {exc.tarinfo.name!r} is unsafe ({exc}); refusing to extract."
        ) from None
    except _DECODE_ERRORS as exc:
        raise DownloadError(
            f"{archive} is corrupt: extracting it failed ({type(exc).__name__}: {exc}). "
            + recovery_hint(archive)
        ) from None
    return target
