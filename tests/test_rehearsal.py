"""Paper-scale rehearsal: config/paper.yaml itself, every job of its DAG through Snakemake.

The run is config/paper.yaml with size overrides only (`SIZE_OVERRIDES`: 2 images per class in
every split, batch 2, one training step per job), over archives built here in the layouts of the
ten real datasets' published files, fetched by the real download code from a local HTTP server on
127.0.0.1 (`CAMREPRO_MIRROR`; the stand-ins' digests replace the published checksums through
`CAMREPRO_CHECKSUMS`), with ImageNet backbone weights in torchvision's own file format (random
tensors of torchvision's state_dicts) fetched through `camrepro weights`. Networks at full width,
224 px. It asserts that every job of the paper DAG ran (the job generator's list, rule by rule)
and that the report rendered at paper scale.

Run it alone: `python3 dev.py test -m rehearsal` (CI runs it as its own step; it is deselected from
the default run). About 13 minutes on 2 idle CPU cores (bench/README.md, "Rehearsal").

"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

from archives import devkit_meta_mat, tar_bytes, zip_bytes
from camrepro.config import load_config
from camrepro.data.sources import SOURCES
from camrepro.jobs import jobs
from camrepro.plan import build_plan
from camrepro.weights import CHECKPOINTS
from checkpoints import checkpoint_state

pytestmark = pytest.mark.rehearsal

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "config" / "paper.yaml"

PER_CLASS = 2
DOWNLOADED = [name for name, source in SOURCES.items() if source.archives]  # the ten real datasets
# The only changes to config/paper.yaml: sizes.
SIZE_OVERRIDES = {
    "datasets": {name: {"per_class": PER_CLASS} for name in DOWNLOADED},
    "training": {role: {"batch_size": 2, "max_steps": 1} for role in ("imagenet", "cub")},
}


# ----------------------------------------------------------------------------- stand-in files


def _jpeg(seed: int, size: tuple[int, int] = (500, 375), gray: bool = False) -> bytes:
    rng = np.random.default_rng(seed)
    w, h = size
    arr = rng.integers(0, 255, (h, w) if gray else (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=90)
    return buf.getvalue()


SIZES = [(500, 375), (375, 500), (500, 333), (333, 500)]


def _mat(**arrays: object) -> bytes:
    from scipy.io import savemat

    buf = io.BytesIO()
    savemat(buf, arrays)
    return buf.getvalue()


def _cells(values: list[str]) -> np.ndarray:
    out = np.empty((len(values), 1), object)
    out[:, 0] = values
    return out


def cub_archives() -> dict[str, bytes]:
    """CUB_200_2011.tgz: CUB_200_2011/{images.txt, classes.txt, ..., images/<class>/<file>}."""
    classes = ["001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross"]
    entries, images, labels, split, boxes = {}, [], [], [], []
    n = 0
    for c, cls in enumerate(classes, 1):
        for j in range(4):
            n += 1
            name = f"{cls}/{cls.split('.', 1)[1]}_{n:04d}_{100 + n}.jpg"
            w, h = SIZES[n % 4]
            entries[f"CUB_200_2011/images/{name}"] = _jpeg(n, (w, h))
            images.append(f"{n} {name}\n")
            labels.append(f"{n} {c}\n")
            split.append(f"{n} {1 if j < 2 else 0}\n")
            boxes.append(f"{n} {w * 0.2:.1f} {h * 0.25:.1f} {w * 0.5:.1f} {h * 0.4:.1f}\n")
    files = {"classes.txt": [f"{i} {c}\n" for i, c in enumerate(classes, 1)], "images.txt": images,
             "image_class_labels.txt": labels, "train_test_split.txt": split, "bounding_boxes.txt": boxes}
    entries |= {f"CUB_200_2011/{k}": "".join(v).encode() for k, v in files.items()}
    entries["attributes.txt"] = b"1 has_bill_shape::curved_(up_or_down)\n"
    return {"CUB_200_2011": tar_bytes(entries, "w:gz")}


# five synsets: the report's top-5 CAM figure (figures.top5_cams) needs at least five classes
IMAGENET_WNIDS = ["n01440764", "n01443537", "n01484850", "n01491361", "n01494475"]


def imagenet_files() -> dict[str, bytes]:
    """ILSVRC2012_img_train.tar (one tar per synset), _img_val.tar (flat), _bbox_val_v3.tgz (val/*.xml),
    _devkit_t12.tar.gz."""
    outer = {}
    for k, wnid in enumerate(IMAGENET_WNIDS):
        outer[f"{wnid}.tar"] = tar_bytes({f"{wnid}_{1000 + j}.JPEG": _jpeg(200 + 10 * k + j, SIZES[j]) for j in range(3)})
    val, xml = {}, {}
    for i in range(2 * len(IMAGENET_WNIDS)):
        name = f"ILSVRC2012_val_{i + 1:08d}"
        w, h = SIZES[i % 4]
        val[f"{name}.JPEG"] = _jpeg(300 + i, (w, h))
        objs = "".join(
            f"<object><name>{IMAGENET_WNIDS[i % len(IMAGENET_WNIDS)]}</name><pose>Unspecified</pose><truncated>0</truncated>"
            f"<difficult>0</difficult><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax>"
            f"<ymax>{y1}</ymax></bndbox></object>"
            for x0, y0, x1, y1 in [(w // 8, h // 6, w // 2, h // 2), (w // 3, h // 3, w - 2, h - 2)][: 1 + i % 2]
        )
        xml[f"val/{name}.xml"] = (
            f"<annotation><folder>val</folder><filename>{name}</filename><source><database>ILSVRC_2012"
            f"</database></source><size><width>{w}</width><height>{h}</height><depth>3</depth></size>"
            f"<segmented>0</segmented>{objs}</annotation>"
        ).encode()
    # the devkit: the val blacklist (1-based val numbers; CAM's protocol leaves them out of
    # localization) and meta.mat's 1,000 leaf synsets, which the originals' heads classify
    head = IMAGENET_WNIDS + [f"n{90000000 + k:08d}" for k in range(1000 - len(IMAGENET_WNIDS))]
    devkit = tar_bytes({"ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_blacklist.txt": b"3\n",
                        "ILSVRC2012_devkit_t12/data/meta.mat": devkit_meta_mat(head)}, "w:gz")  # fmt: skip
    return {"train": tar_bytes(outer), "val": tar_bytes(val), "bbox_val": tar_bytes(xml, "w:gz"), "devkit": devkit}


def _class_images(prefix: str, classes: list[str], per_class: int, seed: int, fmt: str = "{c}_{i:04d}.jpg",
                  gray: bool = False) -> dict[str, bytes]:  # fmt: skip
    return {f"{prefix}{c}/{fmt.format(c=c.split('/')[-1], i=i + 1)}": _jpeg(seed + 10 * k + i, SIZES[i % 4], gray)
            for k, c in enumerate(classes) for i in range(per_class)}  # fmt: skip


def sun397_archives() -> dict[str, bytes]:
    classes = ["a/abbey", "a/apartment_building/outdoor"]
    images = _class_images("SUN397/", classes, 4, 400, "sun_{i:04d}.jpg")
    images["SUN397/ClassName.txt"] = "".join(f"/{c}\n" for c in classes).encode()
    images["SUN397/README.txt"] = b"SUN397\n"
    train = "".join(f"/{c}/sun_{i:04d}.jpg\n" for c in classes for i in (1, 2)).encode()
    test = "".join(f"/{c}/sun_{i:04d}.jpg\n" for c in classes for i in (3, 4)).encode()
    parts = {"Partitions/ClassName.txt": images["SUN397/ClassName.txt"]}
    for k in range(1, 11):  # ten partitions; the protocol takes the first
        parts[f"Partitions/Training_{k:02d}.txt"] = train if k == 1 else test
        parts[f"Partitions/Testing_{k:02d}.txt"] = test if k == 1 else train
    return {"images": tar_bytes(images, "w:gz"), "partitions": zip_bytes(parts)}


def indoor67_archives() -> dict[str, bytes]:
    classes = ["airport_inside", "kitchen"]
    images = _class_images("Images/", classes, 4, 500)
    return {"images": tar_bytes(images),
            "train_list": "".join(f"{c}/{c}_{i:04d}.jpg\n" for c in classes for i in (1, 2, 3)).encode(),
            "test_list": "".join(f"{c}/{c}_{i:04d}.jpg\n" for c in classes for i in (4,)).encode()}  # fmt: skip


def scene15_archives() -> dict[str, bytes]:
    # The real images are greyscale JPEGs.
    return {"images": zip_bytes(_class_images("scene_categories/", ["bedroom", "MITcoast"], 4, 600, "image_{i:04d}.jpg",
                                         gray=True))}  # fmt: skip


SUN_ATTRIBUTES = ["sailing/boating", "natural light", "man-made"]


def sunattribute_archives() -> dict[str, bytes]:
    names = [f"{c}/sun_{i:04d}.jpg" for c in ("a/abbey", "b/beach") for i in range(4)]
    pics = {f"images/{n}": _jpeg(700 + k, SIZES[k % 4]) for k, n in enumerate(names)}
    votes = np.random.default_rng(7).choice([0.0, 0.33, 0.66, 1.0], size=(len(names), len(SUN_ATTRIBUTES)))
    labels = {"SUNAttributeDB/images.mat": _mat(images=_cells(names)),
              "SUNAttributeDB/attributes.mat": _mat(attributes=_cells(SUN_ATTRIBUTES)),
              "SUNAttributeDB/attributeLabels_continuous.mat": _mat(labels_cv=votes),
              "SUNAttributeDB/README.txt": b"SUN Attribute\n"}  # fmt: skip
    return {"images": tar_bytes(pics, "w:gz"), "labels": tar_bytes(labels, "w:gz")}


def caltech101_archives() -> dict[str, bytes]:
    """caltech-101.zip holds caltech-101/101_ObjectCategories.tar.gz and caltech-101/Annotations.tar."""
    classes = ["BACKGROUND_Google", "Faces_easy", "accordion"]
    inner = tar_bytes(_class_images("101_ObjectCategories/", classes, 4, 800, "image_{i:04d}.jpg"), "w:gz")
    annotations = tar_bytes({"Annotations/accordion/annotation_0001.mat": _mat(box_coord=np.array([[2, 300, 2, 200]]))})
    entries = {"caltech-101/Annotations.tar": annotations,  # first: prepare must not take it for the images
               "caltech-101/101_ObjectCategories.tar.gz": inner, "caltech-101/show_annotation.m": b"% matlab\n"}  # fmt: skip
    return {"images": zip_bytes(entries)}


def caltech256_archives() -> dict[str, bytes]:
    classes = ["001.ak47", "198.spider", "257.clutter"]
    images = {f"256_ObjectCategories/{c}/{c[:3]}_{i + 1:04d}.jpg": _jpeg(900 + 10 * k + i, SIZES[i % 4])
              for k, c in enumerate(classes) for i in range(4)}  # fmt: skip
    images["256_ObjectCategories/198.spider/RENAME2"] = b""  # a stray non-image file of the real archive
    return {"images": tar_bytes(images)}


def action40_archives() -> dict[str, bytes]:
    actions = ["applauding", "cooking"]
    images = {f"JPEGImages/{a}_{i:03d}.jpg": _jpeg(1000 + 10 * k + i, SIZES[i % 4])
              for k, a in enumerate(actions) for i in range(1, 5)}  # fmt: skip
    splits = {"ImageSplits/actions.txt": ("action_name\tnumber_of_images\n" + "".join(
        f"{a}\t4\n" for a in actions)).encode()}  # fmt: skip
    for split, ids in (("train", (1, 2)), ("test", (3, 4))):
        for a in actions:
            splits[f"ImageSplits/{a}_{split}.txt"] = "".join(f"{a}_{i:03d}.jpg\n" for i in ids).encode()
        splits[f"ImageSplits/{split}.txt"] = "".join(f"{a}_{i:03d}.jpg\n" for a in actions for i in ids).encode()
    return {"images": zip_bytes(images), "splits": zip_bytes(splits)}


def event8_extracted() -> dict[str, bytes]:
    """What `unrar x event_dataset.rar` gives (the prepare step's documented hand step: Python
    cannot extract RAR, and no RAR writer is available here): event_img/<class>/<file>."""
    return _class_images("event_img/", ["RockClimbing", "badminton"], 4, 1100, "Easy_Climbing_{i:04d}.jpg")


ARCHIVES = {"cub": cub_archives, "sun397": sun397_archives, "indoor67": indoor67_archives,
            "scene15": scene15_archives, "sunattribute": sunattribute_archives,
            "caltech101": caltech101_archives, "caltech256": caltech256_archives,
            "action40": action40_archives}  # fmt: skip


def _mirror_path(url: str) -> str:
    """Where the mirror holds `url`: <host>/<path> (camrepro.data.download.mirrored)."""
    return url.split("://", 1)[1]


def build_inputs(work: Path, mirror: Path) -> list[str]:
    """Write every stand-in: archives and weights under `mirror` (served), ImageNet's archives in
    data/downloads/imagenet (placed by hand, as the real ones are), Event8 extracted in data/raw.
    Returns the sha256sum lines of every file (the CAMREPRO_CHECKSUMS list)."""
    sums = []

    def put(path: Path, data: bytes, name: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        sums.append(f"{hashlib.sha256(data).hexdigest()}  {name}")

    for name, build in ARCHIVES.items():
        payloads = build()
        for a in SOURCES[name].archives:
            put(mirror / _mirror_path(a.url), payloads[a.key], _mirror_path(a.url))
    payloads = imagenet_files()
    for a in SOURCES["imagenet"].archives:
        put(work / "data" / "downloads" / "imagenet" / a.filename, payloads[a.key], a.filename)
    target = work / "data" / "raw" / "event8" / SOURCES["event8"].archives[0].key
    for rel, data in event8_extracted().items():
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        (target / rel).write_bytes(data)
    for arch, ckpt in CHECKPOINTS.items():  # every published checkpoint, in its publisher's file format
        buf = io.BytesIO()
        torch.save(checkpoint_state(arch), buf)
        put(mirror / _mirror_path(ckpt.url), buf.getvalue(), _mirror_path(ckpt.url))
    return sums


def rehearsal_config() -> dict:
    config = yaml.safe_load(PAPER.read_text())
    for key, values in SIZE_OVERRIDES.items():
        for name, extra in values.items():
            config[key][name] = config[key].get(name, {}) | extra
    return config


def _flat(doc: object, prefix: str = "") -> dict[str, object]:
    if isinstance(doc, dict):
        return {k: v for key, value in doc.items() for k, v in _flat(value, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): doc}


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    """Build the inputs, serve them, run Snakemake once over the whole paper DAG."""
    work = tmp_path_factory.mktemp("rehearsal")
    mirror = work / "mirror"
    sums = build_inputs(work, mirror)
    (work / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    config_path = work / "config" / "rehearsal.yaml"
    config_path.parent.mkdir()
    config_path.write_text(yaml.safe_dump(rehearsal_config(), sort_keys=False))
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(mirror)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    bindir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}",
           "CAMREPRO_MIRROR": f"http://127.0.0.1:{server.server_address[1]}",
           "CAMREPRO_CHECKSUMS": str(work / "SHA256SUMS")}  # fmt: skip
    snakemake = shutil.which("snakemake", path=str(bindir))
    if snakemake is None:
        pytest.skip("snakemake is not installed in this environment")
    cmd = [snakemake, "-s", str(ROOT / "Snakefile"), "--directory", str(work), "--configfile", str(config_path),
           "--cores", "2"]  # fmt: skip
    start = time.perf_counter()
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    finally:
        server.shutdown()
        server.server_close()
    seconds = time.perf_counter() - start
    (work / "snakemake.out").write_text(res.stdout + res.stderr)
    print(f"rehearsal: Snakemake took {seconds:.0f} s; output in {work / 'snakemake.out'}")
    return work, config_path, res, seconds


def _ran(output: str) -> dict[str, set[str]]:
    """rule -> the job ids Snakemake started (the wildcard value of each `rule X:` block)."""
    ran: dict[str, set[str]] = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:\n)", output):
        m = re.match(r"(?:local)?rule (\w+):\n", block)
        if not m:
            continue
        wildcards = re.search(r"^\s+wildcards: \w+=(\S+)$", block, re.M)
        ran.setdefault(m.group(1), set()).add(wildcards.group(1) if wildcards else m.group(1))
    return ran


def test_the_rehearsal_config_is_the_paper_config_with_size_overrides_only():
    """What the rehearsal changes in config/paper.yaml: sizes only."""
    paper, rehearsal = _flat(yaml.safe_load(PAPER.read_text())), _flat(rehearsal_config())
    changed = {k for k in paper.keys() | rehearsal.keys() if paper.get(k) != rehearsal.get(k)}
    allowed = {f"datasets.{n}.per_class" for n in DOWNLOADED}
    allowed |= {f"training.{r}.{k}" for r in ("imagenet", "cub") for k in ("batch_size", "max_steps")}
    assert changed == allowed
    assert rehearsal["models.width"] == 1.0 and rehearsal["models.size"] == 224


def test_every_job_of_the_paper_dag_runs_and_the_report_renders_at_paper_scale(rehearsal):
    work, config_path, res, seconds = rehearsal
    output = res.stdout + res.stderr
    assert res.returncode == 0, output[-6000:]
    config = load_config(config_path)
    plan = build_plan(config)
    expected = {kind: set(js) for kind, js in jobs(plan, config, str(config_path)).items() if js}
    expected.pop("synthetic_dataset", None)
    assert _ran(output) == {**expected, "all": {"all"}}
    # the paper DAG: every dataset prepared and verified, a weights job per architecture the
    # networks start from, every table's job (tests/test_workflow.py's dry run counts them)
    assert len(expected["prepare_real_dataset"]) == len(expected["verify_dataset"]) == len(SOURCES)
    assert set(expected["weights"]) >= set(CHECKPOINTS)
    assert {k: len(expected[k]) for k in ("train", "extract", "evaluate", "svm")} == {
        "train": sum(not r.as_is for r in plan.runs.values()),  # the originals are used as they are
        "extract": len(plan.extractions), "evaluate": len(plan.evaluations),
        "svm": len(plan.svms)}  # fmt: skip
    # every download went through the mirror, every archive verified against the list
    for name in ARCHIVES:
        for a in SOURCES[name].archives:
            assert (work / "data" / "downloads" / name / a.filename).is_file()
    # full width, 224 px, one step of batch 2 per training job
    for run in (r for r in plan.runs if not plan.runs[r].as_is):  # the originals are not trained
        log = [json.loads(x) for x in (work / "results" / "models" / run / "s0" / "log.jsonl").read_text().splitlines()]
        assert [r["step"] for r in log if r["event"] == "step"] == [0], run
    html = (work / "reports" / "replication.html").read_text()
    assert "Paper scale: ILSVRC 2012" in html and "EMBEDDED SYNTHETIC BENCHMARK" not in html
    for title in ("CAM Table 1", "CAM Table 4", "CAM Table 5", "Rethinking-CAM Table 2", "Rethinking-CAM Table 3"):
        assert title in html, title
    facts = html[html.index('id="facts"'):]
    for rule in ("weights", "train", "extract", "evaluate", "svm"):
        assert f'<td class="label">{rule}</td>' in facts, rule
    # every table row the paper reports has a reproduced value, except NIN (no torchvision model)
    for csv in (work / "results" / "tables").glob("*.csv"):
        if csv.name == "metrics.csv":
            continue
        table = pd.read_csv(csv)
        reasons = set(table[table["status"] == "not run"]["reason"].fillna(""))
        assert all("NIN" in r for r in reasons), (csv.name, reasons)
        ran = table[table["status"].isin(["matches", "differs"])]
        assert ran["reproduced"].notna().all(), csv.name
    print(f"rehearsal: {sum(len(v) for v in expected.values())} jobs in {seconds:.0f} s")
