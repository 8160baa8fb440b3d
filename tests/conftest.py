"""Shared fixtures: a local HTTP file server (127.0.0.1 only) with Range support and faults; a summary
line when the paper-text checks could not run."""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from archives import (
    build_cub_archive,
)
from camrepro.data import sources

# Server faults, per path (FileServer.faults), each for every request until removed:
#   "wrong_range"   answers a Range request with 206 and the body from offset 0 (Content-Range says so)
#   "short_length"  sends half the body with a Content-Length that claims exactly that half
#   "no_length"     sends half the body with no Content-Length and closes the connection
FAULTS = ("wrong_range", "short_length", "no_length")


@dataclass
class FileServer:
    base_url: str
    files: dict[str, bytes] = field(default_factory=dict)
    # path -> number of upcoming GETs to cut off after half the body (Content-Length stays full)
    truncate_next: dict[str, int] = field(default_factory=dict)
    faults: dict[str, str] = field(default_factory=dict)  # path -> one of FAULTS
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"


@pytest.fixture
def file_server():
    state = FileServer(base_url="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

        def do_GET(self):
            path = self.path.lstrip("/")
            rng = self.headers.get("Range")
            state.requests.append((path, rng))
            if path not in state.files:
                self.send_error(404)
                return
            body = state.files[path]
            fault = state.faults.get(path)
            assert fault in (None, *FAULTS), fault
            start = 0
            if rng and rng.startswith("bytes="):
                start = int(rng[6:].split("-")[0])
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if fault == "wrong_range":
                    start = 0
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            chunk = body[start:]
            if fault in ("short_length", "no_length"):
                chunk = chunk[: len(chunk) // 2]
            if fault == "no_length":
                self.close_connection = True
            else:
                self.send_header("Content-Length", str(len(chunk)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            if state.truncate_next.get(path, 0) > 0:
                state.truncate_next[path] -= 1
                self.wfile.write(chunk[: len(chunk) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(chunk)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


# Skip reason of the paper-text checks (tests/test_paper_values.py) when ../shared/papers is absent.
PAPERS_MISSING = "../shared/papers not found"


def pytest_terminal_summary(terminalreporter):
    """Say loudly, beside the final counts, that paper-text checks did not run: a skip is easy to miss."""
    skipped = [
        r
        for r in terminalreporter.stats.get("skipped", [])
        if PAPERS_MISSING in str(getattr(r, "longrepr", ""))
    ]
    if skipped:
        terminalreporter.write_sep(
            "!",
            f"PAPER TEXT MISSING: {len(skipped)} paper-text checks skipped: {PAPERS_MISSING} next to this "
            "checkout, so paper_values.yaml was not checked against the papers",
            red=True,
            bold=True,
        )


@pytest.fixture(scope="session")
def tiny_cub(tmp_path_factory):
    """A quarter-size CUB stand-in (tests/tiny.py), generated once per session."""
    from camrepro.data.synthetic import generate

    out = tmp_path_factory.mktemp("data") / "cub"
    generate("synthetic-cub", 0, out, scale=0.25, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_trained(tiny_cub, tmp_path_factory):
    """A model trained 2 epochs on `tiny_cub` at tests/tiny.py's TINY_RUN options, once per session."""
    from camrepro.train import TrainConfig, train
    from tiny import TINY_RUN

    run = tmp_path_factory.mktemp("run")
    return train(TrainConfig(dataset=str(tiny_cub), epochs=2, **TINY_RUN), run, progress=False)


@pytest.fixture(scope="session")
def tiny_pretrained(tiny_cub, tmp_path_factory):
    """`camrepro pretrain alexnet` on `tiny_cub` standing in for ImageNet (one epoch, width 1/16,
    48 px): the embedded default's "original" AlexNet, used as it is. Its training run is in
    alexnet.pretrain/ beside the weights file."""
    from camrepro.weights import pretrain

    out = tmp_path_factory.mktemp("weights") / "alexnet.pth"
    return pretrain("alexnet", tiny_cub, out, width=0.0625, epochs=1, batch_size=8, crop=48, resize=56,
                    progress=False)  # fmt: skip


@pytest.fixture
def cub_served(file_server, monkeypatch):
    """Serve a CUB-layout archive and point the registry's CUB entry at it."""
    data = build_cub_archive()
    file_server.files["CUB_200_2011.tgz"] = data
    src = sources.SOURCES["cub"]
    archive = dataclasses.replace(
        src.archives[0], url=file_server.url("CUB_200_2011.tgz"), md5=hashlib.md5(data).hexdigest()
    )
    monkeypatch.setitem(sources.SOURCES, "cub", dataclasses.replace(src, archives=(archive,)))
    return file_server, data


@pytest.fixture
def no_imagenet_checksums(monkeypatch):
    src = sources.SOURCES["imagenet"]
    archives = tuple(dataclasses.replace(a, md5=None) for a in src.archives)
    monkeypatch.setitem(sources.SOURCES, "imagenet", dataclasses.replace(src, archives=archives))
