"""Preprocessing that travels with the model: ``input = (pixel_uint8 * scale - mean) / std``, RGB, NCHW.

Apps on other runtimes re-implement exactly this formula from the manifest, so it stays this simple on purpose.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from export_kit.errors import ManifestError


@dataclass(frozen=True)
class Preprocessing:
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    scale: float = 1.0 / 255.0
    color: str = "RGB"

    def apply(self, images: np.ndarray) -> np.ndarray:
        """uint8 ``(N, H, W, 3)`` pixels -> float32 ``(N, 3, H, W)`` model input."""
        x = images.astype(np.float32) * np.float32(self.scale)
        x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    def to_dict(self) -> dict:
        return {**asdict(self), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict) -> Preprocessing:
        try:
            mean, std = tuple(float(v) for v in data["mean"]), tuple(float(v) for v in data["std"])
            scale, color = float(data.get("scale", 1.0 / 255.0)), str(data.get("color", "RGB"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"preprocessing must have mean[3], std[3], scale, color; got {data!r}") from exc
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0 or color != "RGB":
            raise ManifestError(f"preprocessing needs 3 means, 3 positive stds and color RGB; got {data!r}")
        return cls(mean=mean, std=std, scale=scale, color=color)  # type: ignore[arg-type]
