"""The embedded synthetic WSOL benchmark.

Generative model (one image):

1. **Layout, from the real datasets' ground truth.** The image's aspect, its number of objects, the
   largest object's box area as a fraction of the image, the other boxes' areas, each box's aspect
   and centre are drawn from the published percentiles of the real test set the preset stands in
   for (`real_box_stats.json`: CUB-200-2011 test, one box per image, median area 0.31; ILSVRC2012
   val, 1.61 boxes per image, 23 % of images with several, largest box median 0.41). The longer
   side is drawn from [96, 320] px.
2. **Background.** A low-frequency colour field (a 3x3..7x7 grid of random colours, bicubic
   upsampled), a random linear gradient and per-pixel noise: textured, never flat.
3. **Clutter.** 2-6 distractors (lines, outlined rectangles, random polygons, small blobs) in random
   colours. They belong to no class and to no mask.
4. **Objects.** One object of the image's class per box of the layout, drawn to fill its box and
   larger ones first (later ones occlude them, as in photos). An object is a **body** -- an
   ellipse, aspect 0.35-0.7, with a grey-brown speckled texture drawn from the same distribution
   for every class -- plus a small **class-discriminative part** at one end of the body's major
   axis (about 10-15 % of the object's area; at the demo's working resolution its box side is
   about 12 px median on the CUB stand-in at 64 px, see `tests/test_synthetic.py`). The class is
   *only* visible in the part: its shape, colour and pattern. A classifier can therefore be right
   while looking at the part alone, which is exactly why CAM boxes under-cover objects -- the
   effect both papers study. In `synthetic-cub` (fine-grained) every class has the same part shape
   and classes differ only in the part's hue and pattern; in `synthetic-imagenet` (coarse) no two
   classes share the part's colour and pattern, and each has a shape besides.
5. **Annotations are exact**: the object mask is the union of the body and part pixels as drawn
   (no anti-aliasing), the box is the tight box of the mask in the evaluator's convention
   (x1/y1 inclusive), and `parts.txt` gives the box of the discriminative part.

Determinism: class definitions depend on the preset only; image *i* of split *s* depends on
(seed, preset, s, i) through numpy's SeedSequence. Same seed gives the same bytes (OpenCV's JPEG and
PNG encoders are deterministic); another seed gives other images of the same classes.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from camrepro.data.metadata import DatasetInfo, SplitMeta, write_split
from camrepro.errors import CamreproError
from camrepro.fsutil import atomic_dir, atomic_write_text

SIZE_RANGE = (96, 320)
JPEG_QUALITY = 90

# Part vocabulary. Colours are RGB.
# Eight shapes that stay distinct under the part's random rotation and at the demo's ~10 px: no
# pair is a rotation of another (a square and a diamond would be) and none is nearly round but
# the disc (a hexagon is not told from a disc at that size).
SHAPES = ("disc", "square", "triangle", "bar", "star", "cross", "ring", "half-disc")
COLORS = {
    "red": (220, 40, 40),
    "blue": (40, 80, 230),
    "green": (40, 190, 60),
    "yellow": (235, 210, 30),
    "magenta": (210, 50, 200),
    "cyan": (40, 210, 220),
    "orange": (245, 140, 20),
    "white": (245, 245, 245),
}
PATTERNS = ("solid", "striped", "dotted")
# Fine-grained hues (HSV hue in OpenCV's 0..180 scale) for synthetic-cub: neighbours differ by 15.
FINE_HUES = (0, 15, 30, 45, 60, 75, 90, 105, 120, 135, 150, 165)


@dataclass(frozen=True)
class ClassSpec:
    """What makes a class: only its discriminative part."""

    name: str
    shape: str
    color: tuple[int, int, int]
    pattern: str


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    num_classes: int
    per_class: dict[str, int]  # images per class in each split
    fine_grained: bool = False
    # the real dataset whose GT statistics (boxes per image, box areas, aspects, centres, image aspects)
    # the layouts are drawn from: a key of real_box_stats.json
    calibrated_to: str = "ILSVRC2012 val"
    several_objects: bool = False  # False: one object per image (its area from the largest-box figures)
    stands_in_for: str = ""
    splits: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "splits", tuple(self.per_class))


def _transfer(name: str, real: str, n: int) -> Preset:
    return Preset(
        name=f"synthetic-{name}",
        description=f"Small transfer set standing in for {real} (CAM paper Table 5).",
        num_classes=n,
        per_class={"train": 12, "test": 8},
        stands_in_for=real,
    )


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset(
            name="synthetic-imagenet",
            description="ImageNet stand-in: 24 classes, train/val/test, some images with several objects.",
            num_classes=24,
            per_class={"train": 30, "val": 8, "test": 8},
            several_objects=True,
            stands_in_for="ILSVRC2012",
        ),
        Preset(
            name="synthetic-cub",
            description="CUB-200-2011 stand-in: fine-grained, 12 classes differing only in the "
            "small part's hue and pattern; train/test.",
            num_classes=12,
            per_class={"train": 24, "test": 16},
            fine_grained=True,
            calibrated_to="CUB-200-2011 test",
            stands_in_for="CUB-200-2011",
        ),
        _transfer("sun397", "SUN397", 10),
        _transfer("indoor67", "MIT Indoor67", 8),
        _transfer("scene15", "Scene15", 6),
        _transfer("sunattribute", "SUN Attribute", 8),
        _transfer("caltech101", "Caltech101", 10),
        _transfer("caltech256", "Caltech256", 12),
        _transfer("action40", "Stanford Action40", 8),
        _transfer("event8", "UIUC Event8", 8),
    ]
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise CamreproError(f"unknown synthetic preset {name!r}; choose one of: {', '.join(PRESETS)}.")
    return PRESETS[name]


def _preset_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


def class_specs(preset: Preset) -> list[ClassSpec]:
    """The preset's classes; a function of the preset alone (not of the data seed)."""
    rng = np.random.default_rng(_preset_key(preset.name))
    if preset.fine_grained:
        combos = [(h, p) for p in ("solid", "striped") for h in FINE_HUES]
        chosen = [combos[i] for i in rng.permutation(len(combos))[: preset.num_classes]]
        specs = []
        for hue, pattern in chosen:
            hsv = np.uint8([[[hue, 200, 225]]])
            rgb = tuple(int(v) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])
            specs.append(ClassSpec(f"hue{hue:03d}-{pattern}", "disc", rgb, pattern))
        return specs
    if preset.name == "synthetic-imagenet":
        # The ImageNet stand-in (coarse-grained): no two classes share the part's colour and pattern
        # (8 x 3 = 24 classes), and a colour's classes differ in shape besides. With colour x shape
        # classes (solid parts, about three classes a colour) the width-1/8 networks classified
        # about as well as by colour alone: 17-31 % top-1, against 44 % (bench/README.md, issue 18).
        shapes = rng.permutation(len(SHAPES))
        combos = [(SHAPES[shapes[i % len(SHAPES)]], color, pattern)
                  for i, (color, pattern) in enumerate(itertools.product(COLORS, PATTERNS))]
    else:
        combos = list(itertools.product(SHAPES, COLORS, PATTERNS))
    if len(combos) < preset.num_classes:
        raise CamreproError(f"preset {preset.name} asks for more classes than the vocabulary has")
    picks = rng.permutation(len(combos))[: preset.num_classes]
    specs = []
    for i in picks:
        shape, color, pattern = combos[i]
        name = f"{color}-{shape}" + ("" if pattern == "solid" else f"-{pattern}")
        specs.append(ClassSpec(name, shape, COLORS[color], pattern))
    return specs


# ----------------------------------------------------------------------------- drawing


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    g = int(rng.integers(3, 8))
    grid = rng.uniform(30, 225, size=(g, g, 3)).astype(np.float32)
    img = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = (np.cos(angle) * xx / w + np.sin(angle) * yy / h)[..., None]
    img += ramp * rng.uniform(-50, 50, size=3).astype(np.float32)
    img += rng.normal(0, 8, size=(h, w, 3)).astype(np.float32)
    return img


def _clutter(rng: np.random.Generator, img: np.ndarray) -> None:
    h, w = img.shape[:2]
    for _ in range(int(rng.integers(2, 7))):
        color = tuple(float(c) for c in rng.uniform(0, 255, size=3))
        kind = rng.integers(4)
        p = lambda: (int(rng.integers(0, w)), int(rng.integers(0, h)))  # noqa: E731
        if kind == 0:
            cv2.line(img, p(), p(), color, int(rng.integers(1, 4)))
        elif kind == 1:
            cv2.rectangle(img, p(), p(), color, int(rng.integers(1, 3)))
        elif kind == 2:
            pts = np.array([p() for _ in range(int(rng.integers(3, 6)))], np.int32)
            cv2.fillPoly(img, [pts], color)
        else:
            r = int(rng.integers(2, max(3, min(h, w) // 16)))
            cv2.circle(img, p(), r, color, -1)


def _shape_mask(shape: str, h: int, w: int, cx: float, cy: float, r: float, rot: float) -> np.ndarray:
    """Binary mask of a part shape of radius r centred at (cx, cy), hard-edged."""
    m = np.zeros((h, w), np.uint8)
    c = (int(round(cx)), int(round(cy)))

    def poly(n: int, radii: list[float], phase: float = 0.0) -> None:
        ang = rot + phase + np.arange(n) * 2 * np.pi / n
        rr = np.array(radii * (n // len(radii)))
        pts = np.stack([cx + rr * np.cos(ang), cy + rr * np.sin(ang)], 1)
        cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 1)

    if shape == "disc":
        cv2.circle(m, c, int(round(r)), 1, -1)
    elif shape == "ring":
        cv2.circle(m, c, int(round(r)), 1, -1)
        cv2.circle(m, c, max(1, int(round(r * 0.5))), 0, -1)
    elif shape == "square":
        poly(4, [r * 1.1], np.pi / 4)
    elif shape == "bar":  # a 3:1 rectangle
        ang = rot + np.array([0.32, np.pi - 0.32, np.pi + 0.32, -0.32])
        pts = np.stack([cx + 1.2 * r * np.cos(ang), cy + 1.2 * r * np.sin(ang)], 1)
        cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 1)
    elif shape == "triangle":
        poly(3, [r * 1.2], -np.pi / 2)
    elif shape == "half-disc":
        cv2.ellipse(m, c, (int(round(r * 1.1)), int(round(r * 1.1))), float(np.degrees(rot)), 0, 180, 1, -1)
    elif shape == "star":
        poly(10, [r * 1.2, r * 0.5], -np.pi / 2)
    elif shape == "cross":
        t = max(1, int(round(r * 0.3)))  # thin arms: a thick cross is nearly a disc
        cv2.rectangle(m, (c[0] - int(r), c[1] - t), (c[0] + int(r), c[1] + t), 1, -1)
        cv2.rectangle(m, (c[0] - t, c[1] - int(r)), (c[0] + t, c[1] + int(r)), 1, -1)
    else:
        raise ValueError(shape)
    return m.astype(bool)


def _pattern(spec: ClassSpec, h: int, w: int, r: float, rng: np.random.Generator) -> np.ndarray:
    """Per-pixel part colour (float RGB) with the class's pattern."""
    base = np.array(spec.color, np.float32)
    out = np.broadcast_to(base, (h, w, 3)).copy()
    if spec.pattern == "striped":
        period = max(3.0, r / 2.0)
        yy, xx = np.mgrid[0:h, 0:w]
        out[((xx + yy) // period).astype(int) % 2 == 1] *= 0.35
    elif spec.pattern == "dotted":
        period = max(4, int(r / 2))
        yy, xx = np.mgrid[0:h, 0:w]
        out[((xx % period) < period // 2) & ((yy % period) < period // 2)] = 20.0
    return out + rng.normal(0, 6, size=(h, w, 3)).astype(np.float32)


@dataclass
class DrawnObject:
    mask: np.ndarray
    box: tuple[int, int, int, int]
    part_box: tuple[int, int, int, int]


def _tight_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


# ----------------------------------------------------------------------------- layout

# GT statistics of the real test sets (clovaai/wsolevaluation metadata): what the layouts are drawn from.
REAL_BOX_STATS: dict = json.loads((Path(__file__).with_name("real_box_stats.json")).read_text())
_PERCENT = np.arange(101.0)
MIN_BOX_SIDE = 8  # px on the canvas: a smaller object cannot show a body and a part


def _draw(rng: np.random.Generator, quantiles: list[float], below: float | None = None) -> float:
    """A value from the distribution whose 0th..100th percentiles are `quantiles` (inverse CDF,
    linear between percentiles); with `below`, from that distribution truncated to <= below."""
    top = 100.0 if below is None else float(np.interp(below, quantiles, _PERCENT))
    return float(np.interp(rng.uniform(0, top), _PERCENT, quantiles))


@functools.cache
def _other_box_quantiles(dataset: str) -> list[float]:
    """Percentiles of the area of an image's boxes other than its largest.

    The published figures give every box's area and the largest box's; the rest follow from
    F_all = w F_largest + (1 - w) F_others, with w = images / boxes.
    """
    stats = REAL_BOX_STATS[dataset]
    grid = np.linspace(0.0, 1.0, 4001)
    f_all = np.interp(grid, stats["box_area_fraction_quantiles"], _PERCENT / 100, left=0, right=1)
    f_largest = np.interp(grid, stats["largest_box_area_fraction_quantiles"], _PERCENT / 100, left=0, right=1)
    w = stats["images"] / stats["boxes"]
    f_others = np.maximum.accumulate(np.clip((f_all - w * f_largest) / (1 - w), 0, 1))
    f_others[-1] = 1.0
    return np.interp(_PERCENT / 100, f_others, grid).tolist()


def sample_layout(
    rng: np.random.Generator, preset: Preset
) -> tuple[tuple[int, int], list[tuple[int, int, int, int]]]:
    """Canvas (w, h) and GT boxes of one image, drawn from the real dataset's statistics.

    Image aspect, number of boxes, the largest box's area (as a fraction of the image), the other
    boxes' areas (never above the largest), each box's aspect and centre: each from the published
    percentiles of `preset.calibrated_to`. A box's aspect is clamped to what fits the canvas at its
    area, and its centre to what keeps it inside.
    """
    stats = REAL_BOX_STATS[preset.calibrated_to]
    aspect = _draw(rng, stats["image_aspect_w_over_h_quantiles"])
    long_side = int(rng.integers(SIZE_RANGE[0], SIZE_RANGE[1] + 1))
    w, h = (long_side, max(SIZE_RANGE[0] // 2, round(long_side / aspect)))
    if aspect < 1:
        w, h = max(SIZE_RANGE[0] // 2, round(long_side * aspect)), long_side
    count = 1
    if preset.several_objects:
        counts = {int(k): v for k, v in stats["boxes_per_image"].items()}
        count = int(rng.choice(list(counts), p=np.array(list(counts.values())) / sum(counts.values())))
    largest = _draw(rng, stats["largest_box_area_fraction_quantiles"])
    areas = [largest]
    if count > 1:
        others = _other_box_quantiles(preset.calibrated_to)
        areas += [_draw(rng, others, largest) for _ in range(count - 1)]
    boxes = []
    for area in areas:
        area = max(area, MIN_BOX_SIDE**2 / (w * h))
        ratio = _draw(rng, stats["box_aspect_w_over_h_quantiles"])
        ratio = float(np.clip(ratio, area * w / h, w / (area * h)))  # bw <= w and bh <= h
        bw = min(w, max(MIN_BOX_SIDE, round(np.sqrt(area * w * h * ratio))))
        bh = min(h, max(MIN_BOX_SIDE, round(np.sqrt(area * w * h / ratio))))
        cx = np.clip(_draw(rng, stats["box_center_x_fraction_quantiles"]) * w, bw / 2, w - bw / 2)
        cy = np.clip(_draw(rng, stats["box_center_y_fraction_quantiles"]) * h, bh / 2, h - bh / 2)
        x0, y0 = min(w - bw, int(round(cx - bw / 2))), min(h - bh, int(round(cy - bh / 2)))
        boxes.append((x0, y0, x0 + bw - 1, y0 + bh - 1))
    return (w, h), boxes


def _object_in_box(
    rng: np.random.Generator, spec: ClassSpec, box: tuple[int, int, int, int], h: int, w: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """Body and part masks (canvas-sized) of one object whose tight box is `box`, and the part's
    radius in canvas pixels.

    The object (an ellipse body, the class's part at one end of its major axis, about 10-15 % of
    its area) is drawn at a nominal size in the orientation, out of 16 tried, whose box aspect is
    closest to the target's, then scaled onto the box: the part's shape is stretched by at most
    the small residual.
    """
    a = 100.0
    b = a * rng.uniform(0.35, 0.7)
    r = a * rng.uniform(0.28, 0.36)
    end = 1 if rng.random() < 0.5 else -1
    x0, y0, x1, y1 = box
    target = np.log((x1 - x0 + 1) / (y1 - y0 + 1))
    thetas = rng.uniform(0, 2 * np.pi, 16)
    cos, sin = np.cos(thetas), np.sin(thetas)
    half_w, half_h = np.sqrt((a * cos) ** 2 + (b * sin) ** 2), np.sqrt((a * sin) ** 2 + (b * cos) ** 2)
    px, py = end * 0.8 * a * cos, end * 0.8 * a * sin
    ext_w = np.maximum(half_w, px + r) - np.minimum(-half_w, px - r)
    ext_h = np.maximum(half_h, py + r) - np.minimum(-half_h, py - r)
    k = int(np.argmin(np.abs(np.log(ext_w / ext_h) - target)))
    theta = float(thetas[k])
    side = int(2 * (a + r) + 8)
    c = side / 2
    body = np.zeros((side, side), np.uint8)
    cv2.ellipse(body, (int(c), int(c)), (int(a), int(round(b))), float(np.degrees(theta)), 0, 360, 1, -1)
    part = _shape_mask(
        spec.shape, side, side, c + px[k], c + py[k], r, rng.uniform(0, 2 * np.pi)
    ).astype(np.uint8)
    union = (body | part).astype(bool)
    bx0, by0, bx1, by1 = _tight_box(union)
    size = (x1 - x0 + 1, y1 - y0 + 1)
    canvas_body, canvas_part = np.zeros((h, w), bool), np.zeros((h, w), bool)
    for local, canvas in ((body, canvas_body), (part, canvas_part)):
        crop = local[by0 : by1 + 1, bx0 : bx1 + 1].astype(np.float32)
        canvas[y0 : y1 + 1, x0 : x1 + 1] = cv2.resize(crop, size, interpolation=cv2.INTER_LINEAR) >= 0.5
    scale = np.sqrt(size[0] * size[1] / ((bx1 - bx0 + 1) * (by1 - by0 + 1)))
    return canvas_body, canvas_part, float(r * scale)


def render_image(
    rng: np.random.Generator, spec: ClassSpec, preset: Preset
) -> tuple[np.ndarray, list[DrawnObject]]:
    """Draw one image (uint8 RGB) of class `spec` with its exact object annotations, on a layout drawn
    from the real dataset's statistics (`sample_layout`). Later objects occlude earlier ones, as in
    real photos; each keeps its own full box and mask."""
    (w, h), boxes = sample_layout(rng, preset)
    img = _background(rng, h, w)
    _clutter(rng, img)
    objects: list[DrawnObject] = []
    for box in sorted(boxes, key=lambda b: -(b[2] - b[0] + 1) * (b[3] - b[1] + 1)):  # large first
        body, part, r = _object_in_box(rng, spec, box, h, w)
        a = max(2.0, np.sqrt((box[2] - box[0] + 1) * (box[3] - box[1] + 1)) / 2)
        tone = np.array([125, 112, 95], np.float32) + rng.normal(0, 18, size=3).astype(np.float32)
        speckle = rng.normal(0, 14, size=(h, w, 1)).astype(np.float32)
        spots = cv2.GaussianBlur(rng.normal(0, 1, size=(h, w)).astype(np.float32), (0, 0), a / 6)
        body_rgb = tone + speckle + (spots > 0.08)[..., None] * -35.0
        img[body] = body_rgb[body]
        if part.any():
            part_rgb = _pattern(spec, h, w, r, rng)
            img[part] = part_rgb[part]
        mask = body | part
        objects.append(
            DrawnObject(mask=mask, box=_tight_box(mask), part_box=_tight_box(part if part.any() else mask))
        )
    return np.clip(img, 0, 255).astype(np.uint8), objects


# ----------------------------------------------------------------------------- dataset


def _encode(ext: str, array: np.ndarray, params: list[int]) -> bytes:
    ok, buf = cv2.imencode(ext, array, params)
    if not ok:  # pragma: no cover
        raise RuntimeError(f"OpenCV could not encode {ext}")
    return buf.tobytes()


def split_scales(preset: Preset, scale: float | Mapping[str, float]) -> dict[str, float]:
    """The multiplier of each split's images per class: `scale` for every split, or a mapping of
    split -> multiplier (splits left out: 1)."""
    if not isinstance(scale, Mapping):
        if not scale > 0:
            raise CamreproError(f"--scale must be positive, got {scale}.")
        return {split: float(scale) for split in preset.per_class}
    for split, value in scale.items():
        if split not in preset.per_class:
            raise CamreproError(f"scale: no split {split!r} in {preset.name} (its splits: "
                                f"{', '.join(preset.per_class)}).")  # fmt: skip
        if not value > 0:
            raise CamreproError(f"scale of split {split} must be positive, got {value}.")
    return {split: float(scale.get(split, 1.0)) for split in preset.per_class}


def generate(
    preset_name: str, seed: int, out: str | Path, scale: float | Mapping[str, float] = 1.0,
    progress: bool = True,
) -> DatasetInfo:  # fmt: skip
    """Generate a prepared dataset folder at `out` (written atomically).

    `scale` multiplies the images per class of every split, or, a mapping, of the splits it names
    (at least one image per class). Image j of a class and split does not depend on `scale`: a
    larger dataset holds every image of a smaller one.
    """
    preset = get_preset(preset_name)
    scales = split_scales(preset, scale)
    specs = class_specs(preset)
    out = Path(out)
    split_index = {s: i for i, s in enumerate(("train", "val", "test"))}
    counts = {split: max(1, round(n * scales[split])) for split, n in preset.per_class.items()}
    total = sum(counts.values()) * len(specs)
    bar = tqdm(total=total, desc=f"{preset.name} seed {seed}", unit="img", disable=not progress)
    with atomic_dir(out) as tmp:
        for split, n_per_class in counts.items():
            meta = SplitMeta(image_ids=[], labels={})
            parts_rows = []
            for label, spec in enumerate(specs):
                for j in range(n_per_class):
                    ss = np.random.SeedSequence(
                        [seed, _preset_key(preset.name), split_index[split], label, j]
                    )
                    rng = np.random.default_rng(ss)
                    rgb, objects = render_image(rng, spec, preset)
                    image_id = f"{split}/{spec.name}/{j:05d}.jpg"
                    path = tmp / "images" / image_id
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(
                        _encode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                    )
                    meta.image_ids.append(image_id)
                    meta.labels[image_id] = label
                    meta.sizes[image_id] = (rgb.shape[1], rgb.shape[0])
                    meta.boxes[image_id] = [o.box for o in objects]
                    meta.masks[image_id] = []
                    for k, o in enumerate(objects):
                        mask_id = f"{split}/{spec.name}/{j:05d}_{k}.png"
                        mpath = tmp / "masks" / mask_id
                        mpath.parent.mkdir(parents=True, exist_ok=True)
                        mpath.write_bytes(_encode(".png", o.mask.astype(np.uint8) * 255, []))
                        meta.masks[image_id].append(mask_id)
                        parts_rows.append(f"{image_id},{','.join(map(str, o.part_box))}\n")
                    bar.update()
            write_split(tmp, split, meta)
            atomic_write_text(tmp / split / "parts.txt", "".join(parts_rows))
        info = DatasetInfo(
            name=preset.name,
            classes=[s.name for s in specs],
            splits=list(preset.splits),
            image_root="images",
            mask_root="masks",
            source="synthetic",
            task="wsol",
            description=preset.description + " Generated by camrepro's synthetic WSOL benchmark.",
            params={
                "preset": preset.name,
                "seed": seed,
                "scale": dict(scale) if isinstance(scale, Mapping) else scale,
                "stands_in_for": preset.stands_in_for,
            },
        )
        info.save(tmp)
    bar.close()
    return info
