"""How a photo of any size becomes the model's HxW: the shorter side resized to ``resize`` pixels with a named
filter, then a centred ``crop``: torchvision's ``Resize(resize)`` + ``CenterCrop(crop)`` on a PIL image, the
pipeline most classifiers are trained with. Recorded in the manifest's preprocessing and applied by the one
decoder that verify, golden vectors and int8 calibration share, so no two of them can resize differently.

Resizers differ between libraries (filters, antialiasing, how the long side and the crop offset are rounded), and
a model fed another library's resize silently loses accuracy, so the manifest names the library and the filter,
and torchvision's functional transforms do the work, with Pillow's filters (antialiased when shrinking): no
resizer is written here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from export_kit.errors import ManifestError, UsageError

#: Filter names the manifest may record (torchvision's InterpolationMode values).
FILTERS = ("nearest", "bilinear", "bicubic", "lanczos")
LIBRARY = "torchvision.transforms.functional (PIL)"


@dataclass(frozen=True)
class Geometry:
    resize: int
    crop: tuple[int, int]  # (height, width)
    interpolation: str = "bilinear"

    def __post_init__(self) -> None:
        if self.interpolation not in FILTERS:
            raise UsageError(f"--interpolation must be one of {', '.join(FILTERS)}, got {self.interpolation!r}")
        if self.resize < max(self.crop):
            raise UsageError(f"--resize {self.resize} is smaller than the crop {self.crop[0]}x{self.crop[1]}: "
                             "the shorter side must cover the crop")

    def apply(self, image):
        """A PIL image of any size -> the crop, as a PIL image of the same mode."""
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms import functional as tf

        resized = tf.resize(image, self.resize, interpolation=InterpolationMode(self.interpolation), antialias=True)
        return tf.center_crop(resized, list(self.crop))

    def apply_arrays(self, images: np.ndarray) -> np.ndarray:
        """uint8 ``(N, H, W, 3)`` arrays (datasets decoded elsewhere) -> uint8 ``(N, crop_h, crop_w, 3)``."""
        from PIL import Image

        return np.stack([np.asarray(self.apply(Image.fromarray(img))) for img in images])

    def to_dict(self) -> dict[str, Any]:
        return {"library": LIBRARY, "shorter_side": self.resize, "interpolation": self.interpolation,
                "antialias": True, "center_crop": list(self.crop)}

    @classmethod
    def from_dict(cls, data: Any) -> Geometry:
        try:
            if data.get("library") != LIBRARY:
                raise ValueError(f"library {data.get('library')!r}")
            return cls(int(data["shorter_side"]), (int(data["center_crop"][0]), int(data["center_crop"][1])),
                       str(data["interpolation"]))
        except (AttributeError, KeyError, TypeError, ValueError, IndexError, UsageError) as exc:
            raise ManifestError(f"preprocessing resize must be {LIBRARY} shorter-side resize with a centre "
                                f"crop; got {data!r} ({exc})") from None
