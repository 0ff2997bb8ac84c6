"""How a photo of any size becomes the model's HxW: the shorter side resized to ``resize`` pixels with a named
filter (the long side scaled and truncated, as torchvision's ``Resize(int)``), then a centred ``crop`` (offsets
``round((size - crop) / 2)``, half to even, as torchvision's ``CenterCrop``). Recorded in the manifest's
preprocessing and applied by the one decoder that verify, golden vectors and int8 calibration share, so no two of
them can resize differently.

Resizers differ between libraries (filters, antialiasing, rounding to uint8), and a model fed another library's
resize silently loses accuracy, so the manifest names the library, and a library does the work; no resizer is
written here. Two are recorded:

- ``torch`` (RGB and BGR models, bilinear or bicubic): ``torch.nn.functional.interpolate`` on the decoded pixels
  as float32, antialiased unless the manifest says not, half-pixel centres, and the result kept as float32, never
  rounded. Apps can reproduce it: the C++ consumer calls the same libtorch function, and onnxruntime's ``Resize``
  with the matching attributes (examples/js/make_resize_graphs.py) computes the same filter to within 3e-3 of a
  pixel level, so their logits agree within the fp32 tolerance. Rounding to uint8 would turn those thousandths
  into whole levels wherever a value lies near a half.
- ``PIL`` (grayscale models, and the nearest and lanczos filters): torchvision's functional transforms on a PIL
  image, uint8 out: the pipeline most classifiers were trained with, which apps outside Python do not reproduce.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from export_kit.errors import ManifestError, UsageError

#: Filter names the manifest may record (torchvision's InterpolationMode values).
FILTERS = ("nearest", "bilinear", "bicubic", "lanczos")
PIL_LIBRARY = "torchvision.transforms.functional (PIL)"
TORCH_LIBRARY = "torch.nn.functional.interpolate (float32)"
#: Filters the float library has; the others exist in PIL only.
TORCH_FILTERS = ("bilinear", "bicubic")


@dataclass(frozen=True)
class Geometry:
    resize: int
    crop: tuple[int, int]  # (height, width)
    interpolation: str = "bilinear"
    library: str = TORCH_LIBRARY
    antialias: bool = True

    def __post_init__(self) -> None:
        if self.interpolation not in FILTERS:
            raise UsageError(f"--interpolation must be one of {', '.join(FILTERS)}, got {self.interpolation!r}")
        if self.resize < max(self.crop):
            raise UsageError(f"--resize {self.resize} is smaller than the crop {self.crop[0]}x{self.crop[1]}: "
                             "the shorter side must cover the crop")
        if self.library == TORCH_LIBRARY and self.interpolation not in TORCH_FILTERS:
            raise UsageError(f"{self.interpolation} resizing exists in PIL only; the float32 resize takes "
                             f"{' or '.join(TORCH_FILTERS)}")
        if self.library == PIL_LIBRARY and not self.antialias:
            raise UsageError("PIL's resize always antialiases; --no-antialias takes a colour model resized "
                             f"{' or '.join(TORCH_FILTERS)} (the float32 resize)")

    @classmethod
    def for_model(cls, resize: int, crop: tuple[int, int], interpolation: str, color: str,
                  antialias: bool = True) -> Geometry:
        """The float32 library wherever apps can reproduce it (colour images, bilinear or bicubic), else PIL."""
        floats = color != "L" and interpolation in TORCH_FILTERS
        return cls(resize, crop, interpolation, TORCH_LIBRARY if floats else PIL_LIBRARY, antialias)

    @property
    def dtype(self) -> type:
        """What decoded, resized pixels are stored as: float32 for the float library, uint8 for PIL."""
        return np.float32 if self.library == TORCH_LIBRARY else np.uint8

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) after the resize: the shorter side becomes ``resize``, the long side is scaled and
        truncated (torchvision's rule, which apps reproduce)."""
        if height <= width:
            return self.resize, int(self.resize * width / height)
        return int(self.resize * height / width), self.resize

    def apply(self, image):
        """A PIL image of any size -> the crop: a float32 ``(H, W, C)`` array (float library) or a PIL image of
        the same mode (PIL library)."""
        if self.library == TORCH_LIBRARY:
            return self._apply_float(np.asarray(image))
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms import functional as tf

        resized = tf.resize(image, self.resize, interpolation=InterpolationMode(self.interpolation), antialias=True)
        return tf.center_crop(resized, list(self.crop))

    def _apply_float(self, pixels: np.ndarray) -> np.ndarray:
        import torch
        from torchvision.transforms import functional as tf

        planes = pixels[..., None] if pixels.ndim == 2 else pixels
        # contiguous NCHW float32: the memory layout picks interpolate's kernel, and apps use this one
        x = torch.from_numpy(np.ascontiguousarray(planes.transpose(2, 0, 1)[None], dtype=np.float32))
        resized = torch.nn.functional.interpolate(x, size=self.output_size(*planes.shape[:2]), mode=self.interpolation,
                                                  align_corners=False, antialias=self.antialias)
        return np.ascontiguousarray(tf.center_crop(resized, list(self.crop))[0].permute(1, 2, 0).numpy())

    def apply_arrays(self, images: np.ndarray) -> np.ndarray:
        """uint8 ``(N, H, W, 3)`` arrays (datasets decoded elsewhere) -> ``(N, crop_h, crop_w, 3)`` of
        :attr:`dtype`."""
        if self.library == TORCH_LIBRARY:
            return np.stack([self._apply_float(img) for img in images])
        from PIL import Image

        return np.stack([np.asarray(self.apply(Image.fromarray(img))) for img in images])

    def to_dict(self) -> dict[str, Any]:
        return {"library": self.library, "shorter_side": self.resize, "interpolation": self.interpolation,
                "antialias": self.antialias, "center_crop": list(self.crop)}

    @classmethod
    def from_dict(cls, data: Any) -> Geometry:
        try:
            if data.get("library") not in (TORCH_LIBRARY, PIL_LIBRARY):
                raise ValueError(f"library {data.get('library')!r}")
            antialias = data.get("antialias", True)
            if not isinstance(antialias, bool):
                raise ValueError(f"antialias {antialias!r}")
            return cls(int(data["shorter_side"]), (int(data["center_crop"][0]), int(data["center_crop"][1])),
                       str(data["interpolation"]), str(data["library"]), antialias)
        except (AttributeError, KeyError, TypeError, ValueError, IndexError, UsageError) as exc:
            raise ManifestError(f"preprocessing resize must be a shorter-side resize by {TORCH_LIBRARY} or "
                                f"{PIL_LIBRARY} with a centre crop; got {data!r} ({exc})") from None
