"""One decoding contract for photos, written into the manifest (``preprocessing.decode``) and obeyed by the
Python data loader and the C++ and JavaScript consumers alike, so that a file never becomes one image here and
another in an app.

- 8-bit images only: RGB, grayscale, palette and 1-bit files, with an alpha channel dropped (never composited).
  16-bit and floating-point images are refused: Pillow would clip 16-bit values to 255 (an all-white image),
  where an app's decoder scales them; there is no one right answer to agree on, so none is guessed.
- CMYK (and YCCK) JPEGs are refused: decoders invert and convert them differently (Pillow converts, the C++
  consumer's libjpeg-turbo cannot without a colour profile, sharp applies one).
- Truncated or corrupt files are refused, never decoded in part.
- EXIF orientation is ignored everywhere, as torchvision's loader ignores it: pixels are used in file order.

The loader skips a refused file, lists it with its reason in the dataset's provenance and says so on every run;
the consumers exit 3 with the reason.
"""

from __future__ import annotations

from pathlib import Path

#: Written into every image model's manifest; the consumers check the version they implement.
CONTRACT = {"version": 1, "bit_depth": 8, "modes": ["RGB", "L", "P", "1", "RGBA", "LA", "PA"],
            "alpha": "dropped", "cmyk": "refused", "higher_bit_depth": "refused", "truncated": "refused",
            "exif_orientation": "ignored"}
#: Pillow modes of 8-bit images (alpha dropped by the conversion to RGB).
ACCEPTED = frozenset(CONTRACT["modes"])
#: Pillow refuses to decode an image of more pixels than this (about a 12,000 x 12,000 photo), before decoding.
MAX_PIXELS = 150_000_000


class Refused(Exception):
    """A file outside the decoding contract; its message is the reason, for the provenance and the user."""


def open_rgb(path: str | Path):
    """The file's pixels as an 8-bit RGB PIL image, or :class:`Refused` with the reason."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with Image.open(path) as img:
            if img.mode == "CMYK":
                raise Refused("a CMYK image (give an RGB or grayscale one)")
            if img.width * img.height > MAX_PIXELS:
                raise Refused(f"{img.width}x{img.height}, more than {MAX_PIXELS:,} pixels")
            if img.mode not in ACCEPTED:
                raise Refused(f"a {img.mode} image: only 8-bit images are decoded (16-bit, float and CMYK "
                              "are refused)")
            img.load()  # decodes every byte now: a truncated file fails here, not later
            return img.convert("RGB")
    except Refused:
        raise
    except Image.DecompressionBombError:
        raise Refused(f"more than {MAX_PIXELS:,} pixels") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise Refused(f"not a readable image ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") \
            from None
