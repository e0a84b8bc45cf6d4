"""A generated folder in EuroSAT's layout, for trying patch classification without the download:
``python -m training.eurosat_sample OUT [--variant ms|rgb] [--per-class N] [--jitter J] [--seed S]``.

Each class has its own 13-band reflectance spectrum (B01 … B12, B8A, in EuroSAT's file order) and
texture (crop stripes at a random angle, forest and meadow blobs of different sizes, a regular
grid of roofs, smooth water); every image gets a random brightness, a per-band spectral jitter
(``jitter``: the standard deviation of a multiplicative factor per band, which makes the spectra
of the vegetated classes overlap so that texture matters) and sensor noise. ``ms`` writes
uint16 GeoTIFFs (reflectance × 10 000), ``rgb`` JPEGs of B04, B03, B02 stretched × 3.5.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

__all__ = ["SAMPLE_CLASSES", "write_eurosat_folder"]

#: Reflectance per band (EuroSAT's band order: B01 … B12, B8A) of each generated class.
SAMPLE_CLASSES: dict[str, tuple[float, ...]] = {
    "AnnualCrop": (0.12, 0.09, 0.10, 0.08, 0.15, 0.30, 0.35, 0.38, 0.12, 0.01, 0.25, 0.15, 0.36),
    "Forest": (0.10, 0.06, 0.07, 0.04, 0.09, 0.22, 0.27, 0.29, 0.10, 0.01, 0.14, 0.07, 0.28),
    "Pasture": (0.11, 0.07, 0.09, 0.06, 0.12, 0.27, 0.31, 0.33, 0.11, 0.01, 0.21, 0.11, 0.32),
    "Residential": (0.14, 0.12, 0.12, 0.13, 0.15, 0.17, 0.18, 0.19, 0.08, 0.01, 0.22, 0.19, 0.19),
    "SeaLake": (0.11, 0.08, 0.07, 0.05, 0.04, 0.03, 0.03, 0.02, 0.01, 0.00, 0.01, 0.01, 0.02),
}


def _texture(cls: str, rng: np.random.Generator) -> np.ndarray:
    """(64, 64) multiplicative texture of a class."""
    yy, xx = np.mgrid[0:64, 0:64].astype(np.float32)
    if cls == "AnnualCrop":
        a = rng.uniform(0, np.pi)
        return 1 + 0.25 * np.sign(np.sin((np.cos(a) * xx + np.sin(a) * yy) / rng.uniform(2, 4)))
    if cls in ("Forest", "Pasture"):
        cell = 8 if cls == "Forest" else 32  # forest: crowns; pasture: broad patches
        return 1 + 0.3 * rng.standard_normal((64 // cell, 64 // cell)).repeat(cell, 0).repeat(cell, 1)
    if cls == "Residential":
        step = int(rng.integers(6, 10))
        roofs = ((xx + rng.integers(0, step)) % step < step / 2) & ((yy + rng.integers(0, step)) % step < step / 2)
        return 1 + 0.4 * roofs - 0.2
    return 1 + 0.03 * rng.standard_normal((64, 64))


def sample_patches(per_class: int, jitter: float, seed: int,
                   classes: Sequence[str] = tuple(SAMPLE_CLASSES)) -> Iterator[tuple[str, int, np.ndarray]]:
    """``(class, k, image)`` for ``k = 1..per_class`` of each class; image ``(13, 64, 64)`` reflectance."""
    rng = np.random.default_rng(seed)
    for cls in classes:
        for k in range(1, per_class + 1):
            spec = np.asarray(SAMPLE_CLASSES[cls], np.float32) * rng.uniform(0.8, 1.2)
            spec = spec * np.clip(1 + jitter * rng.standard_normal(13), 0.3, None)
            img = spec[:, None, None] * _texture(cls, rng)[None] + rng.normal(0, 0.01, (13, 64, 64))
            yield cls, k, np.clip(img, 0, 1).astype(np.float32)


def write_eurosat_folder(root: str | Path, variant: str = "ms", per_class: int = 20, jitter: float = 0.0,
                         seed: int = 0, classes: Sequence[str] = tuple(SAMPLE_CLASSES)) -> Path:
    """Write ``per_class`` generated images of each class into ``root/CLASS/CLASS_k.tif|jpg``; returns ``root``."""
    import rasterio
    from affine import Affine
    from PIL import Image

    from pimc_core.io.atomic import atomic_path

    root = Path(root)
    for cls, k, img in sample_patches(per_class, jitter, seed, classes):
        (root / cls).mkdir(parents=True, exist_ok=True)
        target = root / cls / f"{cls}_{k}.{'tif' if variant == 'ms' else 'jpg'}"
        with atomic_path(target, suffix=target.suffix) as tmp:
            if variant == "ms":
                with rasterio.open(tmp, "w", driver="GTiff", width=64, height=64, count=13, dtype="uint16",
                                   crs="EPSG:32633", transform=Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5e6)) as dst:
                    dst.write((img * 10000).astype(np.uint16))
            else:
                rgb = np.clip(img[[3, 2, 1]].transpose(1, 2, 0) * 3.5 * 255, 0, 255).astype(np.uint8)
                Image.fromarray(rgb, "RGB").save(tmp, format="JPEG", quality=95)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    from pimc_core.cli.args import OneLineParser
    from pimc_core.cli.boundary import run_command

    p = OneLineParser(prog="python -m training.eurosat_sample", description=__doc__.split("\n\n")[0])
    p.add_argument("out")
    p.add_argument("--variant", choices=("ms", "rgb"), default="ms")
    p.add_argument("--per-class", type=int, default=20)
    p.add_argument("--jitter", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(list(sys.argv[1:] if argv is None else argv))

    def command() -> None:
        from pimc_core.errors import ConfigError
        from pimc_core.io.atomic import output_folder

        if a.per_class < 2 or a.jitter < 0:
            raise ConfigError("--per-class must be >= 2 and --jitter >= 0")
        output_folder(Path(a.out))
        write_eurosat_folder(a.out, a.variant, a.per_class, a.jitter, a.seed)
        print(f"{a.out}: {a.per_class} {a.variant} images in each of {', '.join(SAMPLE_CLASSES)}")

    return run_command("training.eurosat_sample", command)


if __name__ == "__main__":
    sys.exit(main())
