"""Archive safety (link chains, size limits) and trust-on-first-use downloads against a faulty server."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from archives import build_cub_archive, file_member, tar_with
from camrepro.data import prepare as prepare_mod
from camrepro.data import sources
from camrepro.data.download import ExtractLimits, check_archive, download, safe_extract, verify
from camrepro.errors import DownloadError, UnsafeArchiveError


def _link(name: str, target: str, hard: bool = False) -> tarfile.TarInfo:
    m = tarfile.TarInfo(name)
    m.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    m.linkname = target
    return m


def _file(name: str, data: bytes = b"evil") -> tuple[tarfile.TarInfo, bytes]:
    m = tarfile.TarInfo(name)
    m.size = len(data)
    return m, data


def _tar(path: Path, members: list, mode: str = "w") -> Path:
    with tarfile.open(path, mode) as tf:
        for m in members:
            if isinstance(m, tuple):
                tf.addfile(m[0], io.BytesIO(m[1]))
            else:
                tf.addfile(m)
    return path


# ----------------------------------------------------------------------------- link chains

CHAINS = {
    # the chain: d/l is the root, so e is the root's parent and e/FILE lands beside the target
    "write-through-chain": ([_link("d/l", ".."), _link("e", "d/l/.."), _file("e/FILE")], "e"),
    # each link is harmless as text; d/l is only defined after e, which then points outside
    "link-defined-later": ([_link("e", "d/l/.."), _link("d/l", "..")], "e"),
    # a hard link whose target goes through an earlier symlink
    "hardlink-through-symlink": ([_link("d/l", ".."), _link("h", "d/l/../FILE", hard=True)], "h"),
    # a link loop can be resolved to nothing
    "loop": ([_link("a", "b"), _link("b", "a"), _file("a/FILE")], "a/FILE"),
}


@pytest.mark.parametrize("case", list(CHAINS))
def test_symlink_chains_out_of_the_target_are_refused(tmp_path, case):
    members, culprit = CHAINS[case]
    work = tmp_path / "work"
    work.mkdir()
    archive = _tar(work / "chain.tar", members)
    with pytest.raises(UnsafeArchiveError, match=rf"chain\.tar: .*{culprit!r}"):
        check_archive(archive)
    with pytest.raises(UnsafeArchiveError, match=r"chain\.tar"):
        safe_extract(archive, work / "out")
    assert sorted(p.name for p in work.iterdir()) == ["chain.tar"]  # nothing extracted, no temp left
    assert not (tmp_path / "FILE").exists()


def test_links_that_stay_inside_extract(tmp_path):
    archive = _tar(
        tmp_path / "ok.tar",
        [
            _file("a/b/data.txt", b"ok"),
            _link("a/up", ".."),
            _link("c", "a/up/a/b"),
            _file("c/more.txt", b"m"),
        ],
    )
    out = safe_extract(archive, tmp_path / "out")
    assert (out / "c" / "data.txt").read_bytes() == b"ok"
    assert (out / "a" / "b" / "more.txt").read_bytes() == b"m"  # written through the link, inside


# ----------------------------------------------------------------------------- size limits


def _zeros_tgz(path: Path, size: int) -> Path:
    return _tar(path, [_file("zeros.bin", bytes(size))], mode="w:gz")


def test_extracted_size_limit(tmp_path):
    archive = _zeros_tgz(tmp_path / "big.tgz", 3 << 20)
    with pytest.raises(UnsafeArchiveError, match=r"big\.tgz.*3145728 bytes.*1048576"):
        safe_extract(archive, tmp_path / "out", limits=ExtractLimits(max_bytes=1 << 20))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.tgz"]


@pytest.mark.parametrize("kind", ["tgz", "zip"])
def test_zero_bomb_is_refused_by_its_compression_ratio(tmp_path, kind):
    size = 4 << 20
    limits = ExtractLimits(max_ratio=100, ratio_floor=1 << 20)
    if kind == "tgz":
        bomb = _zeros_tgz(tmp_path / "bomb.tgz", size)
    else:
        bomb = tmp_path / "bomb.zip"
        with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("zeros.bin", bytes(size))
    assert os.path.getsize(bomb) * 100 < size  # it really is a bomb at this ratio
    with pytest.raises(UnsafeArchiveError, match=r"bomb\.(tgz|zip).*compression ratio"):
        safe_extract(bomb, tmp_path / "out", limits=limits)
    assert not (tmp_path / "out").exists()
    # incompressible data of the same size passes the same limits
    fine = _tar(tmp_path / "fine.tgz", [_file("noise.bin", os.urandom(size))], mode="w:gz")
    assert (safe_extract(fine, tmp_path / "out", limits=limits) / "noise.bin").stat().st_size == size


# ----------------------------------------------------------------------------- corrupt archives


def _tgz_bytes(n_files: int = 3) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for i in range(n_files):
            m, data = _file(f"dir/f{i}.bin", os.urandom(50_000))
            tf.addfile(m, io.BytesIO(data))
    return buf.getvalue()


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(3):
            zf.writestr(f"dir/f{i}.bin", os.urandom(50_000))
    return buf.getvalue()


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


CORRUPT = {
    "tgz-truncated": lambda: _tgz_bytes()[:-5000],
    "tgz-flipped-byte": lambda: _flip(_tgz_bytes(), 60_000),
    "tgz-missing-trailer": lambda: _tgz_bytes()[:-4],
    "zip-flipped-byte": lambda: _flip(_zip_bytes(), 60_000),
}


@pytest.mark.parametrize("case", list(CORRUPT))
def test_corrupt_pinned_archive_says_which_files_to_delete(file_server, tmp_path, case):
    """A corrupt archive from an earlier, unchecked download: every error names both files."""
    name = "a.zip" if case.startswith("zip") else "a.tgz"
    bad = CORRUPT[case]()
    dest = tmp_path / name
    dest.write_bytes(bad)
    pin = tmp_path / f"{name}.sha256"
    pin.write_text(f"{hashlib.sha256(bad).hexdigest()}  {name}\n")
    with pytest.raises(DownloadError) as err:
        download(file_server.url(name), dest, progress=False)
        safe_extract(dest, tmp_path / "out")
    assert f"delete {dest} and {pin}" in str(err.value)
    assert not (tmp_path / "out").exists()
    assert dest.exists() and pin.exists()  # the user's files are left for them to delete


def test_checksum_mismatch_of_a_pinned_file_names_both_files(tmp_path):
    dest = tmp_path / "x.tgz"
    dest.write_bytes(b"changed")
    pin = tmp_path / "x.tgz.sha256"
    pin.write_text(f"{'0' * 64}  x.tgz\n")
    with pytest.raises(DownloadError, match=rf"delete {dest} and {pin}"):
        verify(dest)


# ----------------------------------------------------------------------------- downloads, trust on first use


def test_resume_answered_from_the_wrong_offset_is_not_spliced(file_server, tmp_path):
    data = _tgz_bytes()
    file_server.files["a.tgz"] = data
    file_server.faults["a.tgz"] = "wrong_range"
    dest = tmp_path / "a.tgz"
    part = tmp_path / "a.tgz.part"
    part.write_bytes(data[:1000])  # an interrupted earlier download
    with pytest.raises(DownloadError, match=r"Content-Range.*bytes 0-"):
        download(file_server.url("a.tgz"), dest, retries=0, progress=False)
    assert not dest.exists() and not (tmp_path / "a.tgz.sha256").exists()
    # the bad partial file is gone, so the next run starts over and gets the right bytes
    download(file_server.url("a.tgz"), dest, retries=0, progress=False)
    assert dest.read_bytes() == data
    assert (tmp_path / "a.tgz.sha256").read_text().split()[0] == hashlib.sha256(data).hexdigest()


def test_resume_with_a_wrong_offset_recovers_within_one_call(file_server, tmp_path):
    data = _tgz_bytes()
    file_server.files["a.tgz"] = data
    file_server.faults["a.tgz"] = "wrong_range"
    (tmp_path / "a.tgz.part").write_bytes(data[:1000])
    assert (
        download(file_server.url("a.tgz"), tmp_path / "a.tgz", retries=1, progress=False).read_bytes() == data
    )


@pytest.mark.parametrize("fault", ["short_length", "no_length", "cut"])
def test_short_body_is_never_pinned(file_server, tmp_path, fault):
    data = _tgz_bytes()
    file_server.files["a.tgz"] = data
    if fault == "cut":  # full Content-Length, connection closed half way
        file_server.truncate_next["a.tgz"] = 1
    else:
        file_server.faults["a.tgz"] = fault
    dest = tmp_path / "a.tgz"
    with pytest.raises(DownloadError, match=r"a\.tgz"):
        download(file_server.url("a.tgz"), dest, retries=0, progress=False)
    assert not dest.exists() and not (tmp_path / "a.tgz.sha256").exists()
    file_server.faults.clear()
    download(file_server.url("a.tgz"), dest, retries=0, progress=False)
    assert dest.read_bytes() == data
    assert (tmp_path / "a.tgz.sha256").read_text().split()[0] == hashlib.sha256(data).hexdigest()


def test_part_longer_than_the_file_is_discarded(file_server, tmp_path):
    data = b"0123456789" * 100
    file_server.files["f.bin"] = data
    (tmp_path / "f.bin.part").write_bytes(data + b"stale tail of another version")
    with pytest.raises(DownloadError, match=r"f\.bin\.part"):
        download(file_server.url("f.bin"), tmp_path / "f.bin", retries=0, progress=False)
    assert not (tmp_path / "f.bin").exists() and not (tmp_path / "f.bin.sha256").exists()
    assert (
        download(file_server.url("f.bin"), tmp_path / "f.bin", retries=0, progress=False).read_bytes() == data
    )


def test_wrong_checksum_is_a_clear_error_and_leaves_no_output(cub_served, tmp_path, monkeypatch):
    server, data = cub_served
    src = sources.SOURCES["cub"]
    bad = dataclasses.replace(src.archives[0], md5="0" * 32)
    monkeypatch.setitem(sources.SOURCES, "cub", dataclasses.replace(src, archives=(bad,)))
    with pytest.raises(DownloadError, match="checksum mismatch.*CUB_200_2011.tgz"):
        prepare_mod.prepare("cub", root=tmp_path, progress=False)
    assert not (tmp_path / "prepared" / "cub").exists()
    assert not (tmp_path / "downloads" / "cub" / "CUB_200_2011.tgz").exists()
    assert not (tmp_path / "raw" / "cub").exists()


def test_truncated_download_errors_then_resumes(file_server, tmp_path):
    data = build_cub_archive()
    file_server.files["a.tgz"] = data
    file_server.truncate_next["a.tgz"] = 1
    dest = tmp_path / "a.tgz"
    md5 = hashlib.md5(data).hexdigest()
    with pytest.raises(DownloadError, match="interrupted.*run again to resume"):
        download(file_server.url("a.tgz"), dest, md5=md5, retries=0, progress=False)
    assert not dest.exists()  # nothing under the final name
    part = tmp_path / "a.tgz.part"
    assert 0 < part.stat().st_size < len(data)
    have = part.stat().st_size
    download(file_server.url("a.tgz"), dest, md5=md5, retries=0, progress=False)
    assert dest.read_bytes() == data
    assert file_server.requests[-1] == ("a.tgz", f"bytes={have}-")  # resumed, not restarted
    assert not part.exists()


def test_flaky_server_completes_within_one_call_with_retries(file_server, tmp_path):
    data = b"x" * 5000 + b"y" * 5000
    file_server.files["f.bin"] = data
    file_server.truncate_next["f.bin"] = 2
    out = download(
        file_server.url("f.bin"),
        tmp_path / "f.bin",
        sha256=hashlib.sha256(data).hexdigest(),
        retries=3,
        progress=False,
    )
    assert out.read_bytes() == data


def test_unknown_checksum_is_pinned_on_first_download(file_server, tmp_path):
    file_server.files["g.bin"] = b"first version"
    dest = tmp_path / "g.bin"
    download(file_server.url("g.bin"), dest, progress=False)
    pin = tmp_path / "g.bin.sha256"
    assert pin.read_text().split()[0] == hashlib.sha256(b"first version").hexdigest()
    dest.write_bytes(b"tampered")
    with pytest.raises(DownloadError, match="g.bin has sha256"):
        download(file_server.url("g.bin"), dest, progress=False)


def test_offline_error_names_url_and_where_to_put_the_file(tmp_path):
    # port 9 on loopback: nothing listens, the connection is refused at once
    with pytest.raises(DownloadError, match=r"cannot reach http://127.0.0.1:9/x.tgz.*place it at"):
        download("http://127.0.0.1:9/x.tgz", tmp_path / "x.tgz", retries=0, progress=False)


@pytest.mark.parametrize("bad", ["../escape.txt", "ok/../../escape.txt", "{tmp}/abs_escape.txt"])
def test_escaping_tar_member_is_refused_and_nothing_written(tmp_path, bad):
    work = tmp_path / "work"
    work.mkdir()
    bad = bad.format(tmp=tmp_path)  # an absolute member name pointing into this test's own folder
    archive = tar_with([file_member("good.txt"), file_member(bad)], work / "a.tar")
    with pytest.raises(UnsafeArchiveError, match="refusing"):
        safe_extract(archive, work / "out")
    assert not (work / "out").exists()
    # every target the members aim at (work/escape.txt, tmp_path/escape.txt, tmp_path/abs_escape.txt)
    assert [p.name for p in tmp_path.iterdir()] == ["work"]
    assert [p.name for p in work.iterdir()] == ["a.tar"]  # no temp folder left behind


def test_link_out_of_target_is_refused(tmp_path):
    link = tarfile.TarInfo("inner/link")
    link.type = tarfile.SYMTYPE
    link.linkname = "../../outside"
    archive = tar_with([link], tmp_path / "l.tar")
    with pytest.raises(UnsafeArchiveError, match="link"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_zip_member_escaping_is_refused(tmp_path):
    path = tmp_path / "z.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("fine.txt", "ok")
        zf.writestr("../zip_escape.txt", "evil")
    with pytest.raises(UnsafeArchiveError):
        safe_extract(path, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path.parent / "zip_escape.txt").exists()


def test_safe_archive_extracts(tmp_path):
    archive = tar_with([file_member("a/b.txt")], tmp_path / "ok.tar")
    safe_extract(archive, tmp_path / "out")
    assert (tmp_path / "out" / "a" / "b.txt").read_bytes() == b"evil"

# ----------------------------------------------------------------------------- mirror and checksum list


def test_a_mirror_serves_every_url_under_its_host_and_path(file_server, tmp_path, monkeypatch):
    """CAMREPRO_MIRROR=<base>: <scheme>://<host>/<path> is fetched from <base>/<host>/<path> (the
    layout `wget -x` writes), so one local server can stand in for every publisher."""
    file_server.files["data.caltech.edu/records/x/files/a.bin"] = b"mirrored bytes"
    monkeypatch.setenv("CAMREPRO_MIRROR", file_server.base_url + "/")
    dest = tmp_path / "a.bin"
    download("https://data.caltech.edu/records/x/files/a.bin", dest, retries=0, progress=False)
    assert dest.read_bytes() == b"mirrored bytes"
    assert file_server.requests == [("data.caltech.edu/records/x/files/a.bin", None)]


def test_a_checksum_list_replaces_the_published_checksum_of_the_files_it_names(file_server, tmp_path,
                                                                               monkeypatch):  # fmt: skip
    """CAMREPRO_CHECKSUMS names a sha256sum file; its digest of a file name is the one checked
    (a mirror's repackaged or stand-in archives), and a file it does not name keeps the published one."""
    body = b"a stand-in archive"
    file_server.files["f.bin"] = body
    sums = tmp_path / "SHA256SUMS"
    sums.write_text(f"{hashlib.sha256(body).hexdigest()}  some/dir/f.bin\n")
    monkeypatch.setenv("CAMREPRO_CHECKSUMS", str(sums))
    published_md5 = "0" * 32  # what the registry says; the stand-in does not match it
    out = download(file_server.url("f.bin"), tmp_path / "f.bin", md5=published_md5, retries=0, progress=False)
    assert out.read_bytes() == body
    verify(out, md5=published_md5)  # the list's digest, again
    out.write_bytes(b"tampered")
    with pytest.raises(DownloadError, match=f"f.bin has sha256 .*{sums}"):
        verify(out, md5=published_md5)
    other = tmp_path / "g.bin"
    other.write_bytes(body)
    with pytest.raises(DownloadError, match="g.bin has md5"):
        verify(other, md5=published_md5)


def test_a_malformed_checksum_list_is_a_clear_error(tmp_path, monkeypatch):
    sums = tmp_path / "SHA256SUMS"
    sums.write_text("not a digest line\n")
    monkeypatch.setenv("CAMREPRO_CHECKSUMS", str(sums))
    (tmp_path / "f.bin").write_bytes(b"x")
    with pytest.raises(DownloadError, match=r"SHA256SUMS:1: expected '<sha256>  <file>'"):
        verify(tmp_path / "f.bin", md5="0" * 32)


def test_a_download_that_does_not_match_the_checksum_list_names_the_list(file_server, tmp_path, monkeypatch):
    file_server.files["f.bin"] = b"served bytes"
    sums = tmp_path / "SHA256SUMS"
    sums.write_text(f"{'0' * 64}  f.bin\n")
    monkeypatch.setenv("CAMREPRO_CHECKSUMS", str(sums))
    with pytest.raises(DownloadError, match=rf"CAMREPRO_CHECKSUMS={sums} lists for f.bin: if the file is right"):
        download(file_server.url("f.bin"), tmp_path / "f.bin", md5="1" * 32, retries=0, progress=False)
    assert not (tmp_path / "f.bin").exists() and not (tmp_path / "f.bin.part").exists()

