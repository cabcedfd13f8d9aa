"""Opening user images safely and turning them into arrays."""
from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core import LabError

# Our own bomb limit, checked on the header before decoding (Pillow only warns between 1x and 2x
# its limit, and raises above 2x); 64 Mpx covers real photos.
MAX_PIXELS = 64_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
# JPEGs are decoded with DCT scaling down to no less than this on each side: big phone photos
# open ~10x faster and smaller, with plenty of pixels left for any model input.
DRAFT_SIDE = 512

_STANDARD_MODES = ("L", "LA", "RGB", "RGBA")


HASH_DIGITS = 16  # 64 bits: no two images of a dataset share one by chance (1 in 10^10 at 100,000 images)


class ImageError(LabError, ValueError):
    """An input that cannot be used as an image; the message is one line for the user."""


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text[:160] or e.__class__.__name__


def open_image(source: str | Path | bytes | BinaryIO | Image.Image, *,
               draft: int | None = DRAFT_SIDE) -> Image.Image:
    """Open a path, bytes or file object as a loaded, upright, single-frame PIL image."""
    if isinstance(source, Image.Image):
        return source
    name = Path(source).name if isinstance(source, (str, Path)) else getattr(source, "name", None) or "upload"
    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            if not len(source):
                raise ImageError(f"{name}: empty file (0 bytes)")
            source = io.BytesIO(source)
        elif hasattr(source, "seek"):
            source.seek(0)  # an upload that was already read once (e.g. to display it) sits at EOF
        elif isinstance(source, (str, Path)) and Path(source).is_file() and Path(source).stat().st_size == 0:
            raise ImageError(f"{name}: empty file (0 bytes)")
        with Image.open(source) as img:
            img.seek(0)  # animated GIF/WebP/APNG: the first frame
            if draft and img.format == "JPEG":
                img.draft(img.mode, (draft, draft))
            w, h = img.size  # header size (post-draft for JPEG): check before any pixel is decoded
            if w * h > MAX_PIXELS:
                raise ImageError(f"{name}: image too large ({w}×{h}); limit is {MAX_PIXELS:,} pixels")
            img.load()
            try:
                out = ImageOps.exif_transpose(img)  # always a new, fully loaded image
            except Exception:  # malformed EXIF must not make a readable photo unusable
                out = img.copy()
        if out.width < 1 or out.height < 1:
            raise ImageError(f"{name}: image has no pixels")
        return out
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{name}: is a folder, not an image") from None
    except Image.DecompressionBombError:
        raise ImageError(f"{name}: image too large; limit is {MAX_PIXELS:,} pixels") from None
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image Pillow can read (png, jpg, webp, bmp, gif, …)") from None
    except MemoryError:
        raise ImageError(f"{name}: image too large to decode in memory") from None
    except Exception as e:  # user uploads: any decoder failure (OSError, SyntaxError, struct.error…) is "broken"
        raise ImageError(f"{name}: broken or truncated image ({_one_line(e)})") from None


def _scale_to_uint8(a: np.ndarray, sixteen_bit: bool = False) -> np.ndarray:
    """Map any numeric array onto 0..255 uint8 by its dtype or, failing that, its value range."""
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * 255
    if sixteen_bit or a.dtype == np.uint16:
        return ((a.astype(np.uint32) + 128) // 257).astype(np.uint8)
    is_float = np.issubdtype(a.dtype, np.floating)
    a = np.nan_to_num(a.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if lo >= 0 and hi <= 1.0:
        a = a * 255.0  # float images in 0..1, or 0/1 integer masks
    elif lo < 0 or hi > 255:
        if not is_float and lo >= 0 and hi <= 65535:
            a = a / 257.0  # 16-bit range stored in a wider type (PIL "I" from 16-bit PNGs)
        else:
            a = (a - lo) * (255.0 / max(hi - lo, 1e-12))
    return np.clip(a + 0.5, 0, 255).astype(np.uint8)


def array_to_image(arr: np.ndarray) -> Image.Image:
    """Turn an (H,W), (H,W,1), (H,W,2), (H,W,3) or (H,W,4) array of any dtype into an L/LA/RGB/RGBA image."""
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (2, 3, 4)) or 0 in a.shape[:2]:
        raise ImageError(f"array of shape {a.shape} is not an image (expected H×W, H×W×3 or H×W×4)")
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        raise ImageError(f"array of dtype {a.dtype} is not an image")
    if a.ndim == 3 and a.shape[2] in (2, 4):  # alpha is coverage: scale it on its own, colour by range
        a = np.concatenate([_scale_to_uint8(a[..., :-1]), _scale_to_uint8(a[..., -1:])], axis=2)
    a = np.ascontiguousarray(_scale_to_uint8(a))
    return Image.fromarray(a)  # uint8 with 1/2/3/4 channels -> L/LA/RGB/RGBA


def standard_mode(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to L, LA, RGB or RGBA (16-bit/float scaled, palette transparency kept)."""
    mode = img.mode
    if mode in _STANDARD_MODES:
        return img
    try:
        if mode.startswith("I;16"):
            return Image.fromarray(_scale_to_uint8(np.asarray(img), sixteen_bit=True))
        if mode in ("I", "F"):
            return Image.fromarray(_scale_to_uint8(np.asarray(img)))
        if mode in ("1", "La"):
            return img.convert("L" if mode == "1" else "LA")
        if mode in ("P", "PA"):
            has_alpha = mode == "PA" or "transparency" in img.info
            return img.convert("RGBA" if has_alpha else "RGB")
        if mode == "RGBa":
            return img.convert("RGBA")
        return img.convert("RGB")  # CMYK, YCbCr, RGBX, HSV, LAB…
    except Exception as e:
        raise ImageError(f"cannot convert image mode {mode} ({_one_line(e)})") from None


def fit_rgb(img: Image.Image | np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to (height, width) RGB uint8 the way the folder datasets are loaded."""
    img = array_to_image(img) if isinstance(img, np.ndarray) else standard_mode(img)
    if img.mode in ("LA", "RGBA"):
        img = flatten_alpha(img)
    img = img.convert("RGB").resize((int(size[1]), int(size[0])), Image.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


def flatten_alpha(img: Image.Image, background: int = 255) -> Image.Image:
    """Composite any transparency onto a plain background."""
    img = standard_mode(img).convert("RGBA")
    bg = Image.new("RGBA", img.size, (background, background, background, 255))
    return Image.alpha_composite(bg, img).convert("RGB")


def content_hash(source: str | Path | bytes | np.ndarray) -> str:
    """An image's identity by content: sha256 of a file's bytes (or of an array's dtype, shape and pixels), in hex."""
    h = hashlib.sha256()
    if isinstance(source, np.ndarray):
        h.update(f"{source.dtype.str}{source.shape}".encode())
        h.update(np.ascontiguousarray(source).data)
    elif isinstance(source, (str, Path)):
        with open(source, "rb") as f:
            hashlib.file_digest(f, lambda: h)
    else:
        h.update(source)
    return h.hexdigest()[:HASH_DIGITS]
