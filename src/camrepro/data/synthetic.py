"""The embedded synthetic WSOL benchmark.

Generative model (one image):

1. **Canvas.** Width and height drawn independently from [96, 320] px, so sizes and aspect
   ratios vary as in real data.
2. **Background.** A low-frequency colour field (a 3x3..7x7 grid of random colours, bicubic
   upsampled), a random linear gradient and per-pixel noise: textured, never flat.
3. **Clutter.** 2-6 distractors (lines, outlined rectangles, random polygons, small blobs) in random
   colours. They belong to no class and to no mask.
4. **Objects.** One object of the image's class (synthetic-imagenet: sometimes 2-3 of them, each with
   its own box and mask). An object is a **body** -- a rotated ellipse, aspect 0.35-0.7, with a
   grey-brown speckled texture drawn from the same distribution for every class -- plus a small
   **class-discriminative part** at one end of the body's major axis (about 10-15 % of the object's
   area). The class is *only* visible in the part: its shape, colour and pattern. A classifier can
   therefore be right while looking at the part alone, which is exactly why CAM boxes under-cover
   objects -- the effect both papers study. In `synthetic-cub` (fine-grained) every class has the
   same part shape and classes differ only in the part's hue and pattern.
5. **Annotations are exact**: the object mask is the union of the body and part pixels as drawn
   (no anti-aliasing), the box is the tight box of the mask in the evaluator's convention
   (x1/y1 inclusive), and `parts.txt` gives the box of the discriminative part.

Determinism: class definitions depend on the preset only; image *i* of split *s* depends on
(seed, preset, s, i) through numpy's SeedSequence. Same seed gives the same bytes (OpenCV's JPEG and
PNG encoders are deterministic); another seed gives other images of the same classes.
"""

from __future__ import annotations

import hashlib
import itertools
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
    extra_objects_prob: float = 0.0  # chance of 1-2 more objects of the same class
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
            extra_objects_prob=0.2,
            stands_in_for="ILSVRC2012",
        ),
        Preset(
            name="synthetic-cub",
            description="CUB-200-2011 stand-in: fine-grained, 12 classes differing only in the "
            "small part's hue and pattern; train/test.",
            num_classes=12,
            per_class={"train": 24, "test": 16},
            fine_grained=True,
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
    patterns = ("solid",) if preset.name == "synthetic-imagenet" else PATTERNS
    combos = list(itertools.product(SHAPES, COLORS, patterns))
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


def _place_object(
    rng: np.random.Generator, h: int, w: int, spec: ClassSpec, scale: float, taken: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float, float] | None:
    """Body and part masks of one object that fits the canvas and avoids `taken`, or None."""
    for _ in range(20):
        a = scale * min(h, w) * rng.uniform(0.22, 0.4)  # body semi-major axis
        b = a * rng.uniform(0.35, 0.7)
        r = a * rng.uniform(0.28, 0.36)  # part radius
        theta = rng.uniform(0, 2 * np.pi)
        reach = a + r * 0.9
        if 2 * reach + 2 >= min(h, w):
            continue
        cx = rng.uniform(reach + 1, w - reach - 1)
        cy = rng.uniform(reach + 1, h - reach - 1)
        body = np.zeros((h, w), np.uint8)
        cv2.ellipse(
            body,
            (int(round(cx)), int(round(cy))),
            (int(round(a)), int(round(b))),
            float(np.degrees(theta)),
            0,
            360,
            1,
            -1,
        )
        body = body.astype(bool)
        end = 1 if rng.random() < 0.5 else -1  # which end of the major axis holds the part
        px = cx + end * np.cos(theta) * a * 0.8
        py = cy + end * np.sin(theta) * a * 0.8
        part = _shape_mask(spec.shape, h, w, px, py, r, rng.uniform(0, 2 * np.pi))
        obj = body | part
        if not obj.any() or (taken & obj).any():
            continue
        return body, part, r, float(a)
    return None


def render_image(
    rng: np.random.Generator, spec: ClassSpec, n_objects: int
) -> tuple[np.ndarray, list[DrawnObject]]:
    """Draw one image (uint8 RGB) of class `spec` with its exact object annotations."""
    w = int(rng.integers(SIZE_RANGE[0], SIZE_RANGE[1] + 1))
    h = int(rng.integers(SIZE_RANGE[0], SIZE_RANGE[1] + 1))
    img = _background(rng, h, w)
    _clutter(rng, img)
    taken = np.zeros((h, w), bool)
    objects: list[DrawnObject] = []
    scale = 1.0 if n_objects == 1 else 0.6
    for k in range(n_objects):
        placed = _place_object(rng, h, w, spec, scale, taken)
        if placed is None:
            if k == 0:  # always at least one object: retry at a smaller scale
                placed = _place_object(rng, h, w, spec, 0.5, taken)
            if placed is None:
                continue
        body, part, r, a = placed
        tone = np.array([125, 112, 95], np.float32) + rng.normal(0, 18, size=3).astype(np.float32)
        speckle = rng.normal(0, 14, size=(h, w, 1)).astype(np.float32)
        spots = cv2.GaussianBlur(rng.normal(0, 1, size=(h, w)).astype(np.float32), (0, 0), a / 6)
        body_rgb = tone + speckle + (spots > 0.08)[..., None] * -35.0
        img[body] = body_rgb[body]
        part_rgb = _pattern(spec, h, w, r, rng)
        img[part] = part_rgb[part]
        mask = body | part
        taken |= cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        objects.append(DrawnObject(mask=mask, box=_tight_box(mask), part_box=_tight_box(part)))
    if not objects:  # pragma: no cover - the 0.5 scale always fits a 96 px canvas
        raise RuntimeError("could not place an object")
    return np.clip(img, 0, 255).astype(np.uint8), objects


# ----------------------------------------------------------------------------- dataset


def _encode(ext: str, array: np.ndarray, params: list[int]) -> bytes:
    ok, buf = cv2.imencode(ext, array, params)
    if not ok:  # pragma: no cover
        raise RuntimeError(f"OpenCV could not encode {ext}")
    return buf.tobytes()


def generate(
    preset_name: str, seed: int, out: str | Path, scale: float = 1.0, progress: bool = True
) -> DatasetInfo:
    """Generate a prepared dataset folder at `out` (written atomically).

    `scale` multiplies the images per class of every split (at least one image per class).
    """
    preset = get_preset(preset_name)
    if scale <= 0:
        raise CamreproError(f"--scale must be positive, got {scale}.")
    specs = class_specs(preset)
    out = Path(out)
    split_index = {s: i for i, s in enumerate(("train", "val", "test"))}
    total = sum(max(1, round(n * scale)) for n in preset.per_class.values()) * len(specs)
    bar = tqdm(total=total, desc=f"{preset.name} seed {seed}", unit="img", disable=not progress)
    with atomic_dir(out) as tmp:
        for split, n_per_class in preset.per_class.items():
            n_per_class = max(1, round(n_per_class * scale))
            meta = SplitMeta(image_ids=[], labels={})
            parts_rows = []
            for label, spec in enumerate(specs):
                for j in range(n_per_class):
                    ss = np.random.SeedSequence(
                        [seed, _preset_key(preset.name), split_index[split], label, j]
                    )
                    rng = np.random.default_rng(ss)
                    n_obj = 1
                    if rng.random() < preset.extra_objects_prob:
                        n_obj += int(rng.integers(1, 3))
                    rgb, objects = render_image(rng, spec, n_obj)
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
                "scale": scale,
                "stands_in_for": preset.stands_in_for,
            },
        )
        info.save(tmp)
    bar.close()
    return info
