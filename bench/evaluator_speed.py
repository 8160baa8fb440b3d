"""MaxBoxAcc sweep: the compiled evaluator against the straightforward loop, on the same maps.

The straightforward loop (`camrepro.evaluator.reference_sweep_correct`) thresholds each map at
every CAM threshold and runs an OpenCV contour search each time, as the reference evaluator does.
Both run on one core over the same 224x224 maps (smooth CAM-like maps and noisy ones), results
are checked identical, and maps/s plus the ratio are printed; then the compiled sweep runs on all
cores with threads.

    python bench/evaluator_speed.py [--maps 20] [--interval 0.001]
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from camrepro.evaluator import cam_thresholds, reference_sweep_correct, sweep_correct

GT = [(40, 30, 180, 200)]


def make_maps(kind: str, count: int, seed: int = 0) -> list[np.ndarray]:
    """Smooth: a 14x14 random CAM upsampled bicubically (what a CAM looks like). Noisy: plus 40 % noise."""
    rng = np.random.default_rng(seed)
    maps = []
    for _ in range(count):
        small = rng.random((14, 14)) ** 3  # a few dominant peaks
        m = cv2.resize(small, (224, 224), interpolation=cv2.INTER_CUBIC)
        if kind == "noisy":
            m = 0.6 * (m - m.min()) / (m.max() - m.min()) + 0.4 * rng.random((224, 224))
        maps.append((m - m.min()) / (m.max() - m.min()))
    return maps


def per_map_seconds(fn, maps, thresholds, strategy) -> tuple[float, list[np.ndarray]]:
    start = time.perf_counter()
    out = [fn(m, GT, thresholds, (30, 50, 70), strategy) for m in maps]
    return (time.perf_counter() - start) / len(maps), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", type=int, default=20)
    parser.add_argument("--reference-maps", type=int, default=10, help="noisy maps are slow for the loop")
    parser.add_argument("--interval", type=float, default=0.001)
    args = parser.parse_args()
    thresholds = cam_thresholds(args.interval)
    sweep_correct(make_maps("smooth", 1)[0], GT, thresholds)  # compile outside the timing
    sweep_correct(make_maps("smooth", 1)[0], GT, thresholds, strategy="largest")
    print(f"{len(thresholds)} CAM thresholds, 224x224 maps, one core unless noted\n")
    print(f"{'maps':7s} {'strategy':9s} {'loop maps/s':>12s} {'fast maps/s':>12s} {'ratio':>7s}  identical")
    for kind in ("smooth", "noisy"):
        maps = make_maps(kind, args.maps)
        for strategy in ("multi", "largest"):
            ref_s, ref_out = per_map_seconds(
                reference_sweep_correct, maps[: args.reference_maps], thresholds, strategy
            )
            fast_s, fast_out = per_map_seconds(sweep_correct, maps, thresholds, strategy)
            same = all(np.array_equal(a, b) for a, b in zip(ref_out, fast_out, strict=False))
            print(
                f"{kind:7s} {strategy:9s} {1 / ref_s:12.1f} {1 / fast_s:12.1f} {ref_s / fast_s:6.0f}x  {same}"
            )
    cores = os.cpu_count() or 1
    maps = make_maps("smooth", args.maps * cores)
    with ThreadPoolExecutor(cores) as pool:
        start = time.perf_counter()
        list(pool.map(lambda m: sweep_correct(m, GT, thresholds), maps))
        elapsed = time.perf_counter() - start
    print(f"\nall {cores} cores (threads), smooth, multi: {len(maps) / elapsed:.1f} maps/s")


if __name__ == "__main__":
    main()
