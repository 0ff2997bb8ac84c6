"""Preprocessing that travels with the model: ``input = (pixel_uint8 * scale - mean) / std``, laid out NCHW (or
NHWC), in RGB or BGR (three channels, in that order) or L (one grayscale channel), with one mean and one std per
channel, in the model's channel order; and, for photos of any size, the resize and crop that bring them to the
model's size (:mod:`export_kit.model.geometry`), applied when they are decoded.

Apps on other runtimes re-implement exactly this formula from the manifest, so it stays this simple on purpose.
Data readers decode RGB; a BGR model's pixels are reversed (models trained on OpenCV's ``imread`` expect BGR, and
feeding them RGB silently costs accuracy), a grayscale model's are converted by Pillow (ITU-R 601 luma, the
conversion most image libraries share). The golden pixels are stored already in the model's mode, so apps feeding
them never convert.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from export_kit.errors import ManifestError
from export_kit.model.datasets.decode import CONTRACT
from export_kit.model.geometry import Geometry

#: Colour mode -> channel count. BGR is RGB with the channels in reverse order.
COLORS = {"RGB": 3, "BGR": 3, "L": 1}
#: Axis orders of the model's image input after the batch: channels first (PyTorch's), or last (what models
#: converted from other frameworks, and apps that hand over HWC buffers, take).
LAYOUTS = ("NCHW", "NHWC")


@dataclass(frozen=True)
class Preprocessing:
    """``geometry`` (None: images arrive at the model's size) resizes and crops decoded images of any size."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    scale: float = 1.0 / 255.0
    color: str = "RGB"
    geometry: Geometry | None = None
    layout: str = "NCHW"

    @classmethod
    def identity(cls, channels: int = 3) -> Preprocessing:
        """Pixels scaled to [0, 1] and nothing else, for ``channels`` (1: grayscale, 3: RGB)."""
        return cls(mean=(0.0,) * channels, std=(1.0,) * channels, color=color_for(channels))

    @property
    def channels(self) -> int:
        return COLORS[self.color]

    def tensor_shape(self, chw: tuple[int, ...]) -> tuple[int, ...]:
        """The input's per-sample shape for an image of ``(C, H, W)``, in this layout."""
        return tuple(chw) if self.layout == "NCHW" else (chw[1], chw[2], chw[0])

    def chw(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """``(C, H, W)`` of an image input whose per-sample shape, in this layout, is ``shape``."""
        return tuple(shape) if self.layout == "NCHW" else (shape[2], shape[0], shape[1])

    def value_range(self) -> tuple[float, float]:
        """The smallest and largest model input any pixel can become: the image input's value domain."""
        ends = [((0.0 - m) / sd, (255 * self.scale - m) / sd) for m, sd in zip(self.mean, self.std, strict=True)]
        return min(lo for lo, _ in ends), max(hi for _, hi in ends)

    def pixels(self, images: np.ndarray) -> np.ndarray:
        """``(N, H, W, 3)`` RGB pixels (or, for a grayscale model, pixels already grayscale) -> pixels in this
        colour mode. uint8, or float32 values of a float resize (RGB and BGR only)."""
        if self.color == "BGR" and images.shape[-1] == 3:
            return np.ascontiguousarray(images[..., ::-1])
        if images.shape[-1] == self.channels and self.color != "BGR":
            return images
        if self.color == "L" and images.shape[-1] == 3:
            from PIL import Image

            return np.stack([np.asarray(Image.fromarray(img, "RGB").convert("L")) for img in images])[..., None]
        raise ValueError(f"{self.color} preprocessing takes RGB pixels{' or grayscale' if self.color == 'L' else ''}"
                         f", got {images.shape[-1]} channels")

    def normalize(self, pixels: np.ndarray) -> np.ndarray:
        """``(N, H, W, channels)`` pixels already in this colour mode (golden pixels) -> float32 model input,
        ``(N, channels, H, W)`` or, NHWC, ``(N, H, W, channels)``: the formula apps re-implement."""
        x = pixels.astype(np.float32) * np.float32(self.scale)
        x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2) if self.layout == "NCHW" else x)

    def apply(self, images: np.ndarray) -> np.ndarray:
        """``(N, H, W, 3)`` RGB pixels as decoded (and resized) -> float32 model input in this layout."""
        return self.normalize(self.pixels(images))

    def to_dict(self) -> dict:
        data = {**asdict(self), "mean": list(self.mean), "std": list(self.std)}
        data.pop("geometry")
        data["decode"] = dict(CONTRACT)  # how a photo becomes pixels, before any of the above
        return {**data, "resize": self.geometry.to_dict()} if self.geometry else data

    @classmethod
    def from_dict(cls, data: dict) -> Preprocessing:
        try:
            mean, std = tuple(float(v) for v in data["mean"]), tuple(float(v) for v in data["std"])
            scale, color = float(data.get("scale", 1.0 / 255.0)), str(data.get("color", "RGB"))
            layout = str(data.get("layout", "NCHW"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"preprocessing must have mean[C], std[C], scale, color; got {data!r}") from exc
        channels = COLORS.get(color)
        if channels is None or len(mean) != channels or len(std) != channels or min(std) <= 0:
            raise ManifestError(f"preprocessing needs color RGB or BGR (3 means, 3 positive stds) or L (1 and 1); "
                                f"got {data!r}")
        if layout not in LAYOUTS:
            raise ManifestError(f"preprocessing layout must be one of {', '.join(LAYOUTS)}; got {layout!r}")
        geometry = Geometry.from_dict(data["resize"]) if data.get("resize") is not None else None
        return cls(mean=mean, std=std, scale=scale, color=color, geometry=geometry, layout=layout)


def color_for(channels: int) -> str:
    """The colour mode of a model input with ``channels`` channels."""
    for color, count in COLORS.items():
        if count == channels:
            return color
    raise ValueError(f"no colour mode has {channels} channels; images have 1 (L) or 3 (RGB)")
