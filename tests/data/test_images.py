"""Tests for core.data.images: safe opening, mode handling and the shared RGB resize."""
from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from core.data.images import ImageError, array_to_image, fit_rgb, flatten_alpha, open_image, standard_mode


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims a size, with no pixel data: what a decompression bomb looks like to open()."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_open_bytes_path_and_file_object(tmp_path):
    img = Image.new("RGB", (12, 8), (10, 200, 30))
    data = encode(img, "PNG")
    path = tmp_path / "a.png"
    path.write_bytes(data)
    for source in (data, bytearray(data), path, str(path), io.BytesIO(data), open(path, "rb")):
        out = open_image(source)
        assert out.size == (12, 8) and out.mode == "RGB"
        assert out.getpixel((3, 3)) == (10, 200, 30)  # loaded: pixels readable after the file is closed
    assert open_image(img) is img
    used = io.BytesIO(data)
    used.read()  # already consumed once, like a displayed Streamlit upload
    assert open_image(used).size == (12, 8)


def test_exif_orientation_6_is_turned_upright():
    img = Image.new("RGB", (40, 20), (255, 255, 255))
    img.paste((255, 0, 0), (0, 0, 6, 6))  # marker in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    out = open_image(encode(img, "JPEG", exif=exif.tobytes(), quality=95))
    assert out.size == (20, 40)
    r, g, b = out.getpixel((out.width - 2, 1))  # stored top-left shows at the top-right
    assert r > 200 and g < 60 and b < 60
    assert out.getexif().get(0x0112, 1) == 1


def test_animated_gif_uses_first_frame():
    frames = [Image.new("L", (16, 16), 255), Image.new("L", (16, 16), 0)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    out = open_image(data)
    assert np.asarray(out.convert("L")).min() == 255


@pytest.mark.parametrize("data", [
    b"",
    b"hello, this is just text\nwith two lines\n",
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
    bytes(range(256)) * 4,
    encode(Image.new("RGB", (64, 64), "red"), "PNG")[:60],
    encode(Image.linear_gradient("L").convert("RGB"), "JPEG")[:400],
    b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,
])
def test_bad_bytes_raise_one_line_image_error(data):
    with pytest.raises(ImageError) as e:
        open_image(data)
    msg = str(e.value)
    assert msg and "\n" not in msg and len(msg) < 250


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        open_image(tmp_path / "nope.png")
    with pytest.raises(ImageError):
        open_image(tmp_path)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow warns before we refuse
@pytest.mark.parametrize("size", [(30000, 30000), (10000, 9000)])  # above 2x Pillow's limit, and between 1x and 2x
def test_decompression_bomb_is_refused_quickly(size):
    t0 = time.perf_counter()
    with pytest.raises(ImageError, match="too large"):
        open_image(png_header(*size))
    assert time.perf_counter() - t0 < 5.0  # refused from the header: decoding it would take far longer


@pytest.mark.quick
def test_big_jpeg_is_drafted_small():
    big = Image.linear_gradient("L").resize((6000, 4000)).convert("RGB")
    data = encode(big, "JPEG", quality=80)
    out = open_image(data)
    assert out.size == (1500, 1000)  # DCT-scaled 1/4, still >= 512 on each side
    assert open_image(data, draft=None).size == (6000, 4000)


def test_standard_mode_covers_odd_modes():
    base = Image.linear_gradient("L").resize((32, 32))
    cases = {
        "1": base.convert("1"), "P": base.convert("P"), "LA": base.convert("LA"), "CMYK": base.convert("CMYK"),
        "F": base.convert("F"), "YCbCr": base.convert("RGB").convert("YCbCr"), "RGBa": base.convert("RGBA").convert("RGBa"),
    }
    for name, img in cases.items():
        assert standard_mode(img).mode in ("L", "LA", "RGB", "RGBA"), name
    trans = base.convert("P")
    trans.info["transparency"] = 0
    assert standard_mode(trans).mode == "RGBA"


def test_sixteen_bit_is_scaled_not_clipped():
    a = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    img = Image.fromarray(a)
    assert img.mode.startswith("I;16")
    assert np.asarray(standard_mode(img)).tolist() == [[0, 1, 128, 255]]
    reopened = open_image(encode(img, "PNG"))  # 16-bit PNG round trip (opens as I;16 or I)
    assert np.asarray(standard_mode(reopened)).tolist() == [[0, 1, 128, 255]]
    assert np.asarray(standard_mode(Image.fromarray(a.astype(np.int32)))).tolist() == [[0, 1, 128, 255]]


@pytest.mark.parametrize("arr,expect", [
    (np.array([[0.0, 0.5, 1.0]]), [0, 128, 255]),
    (np.array([[False, True, True]]), [0, 255, 255]),
    (np.array([[0, 100, 255]], dtype=np.int64), [0, 100, 255]),
    (np.array([[0, 32896, 65535]], dtype=np.uint16), [0, 128, 255]),
    (np.array([[-1.0, 0.0, 1.0]]), [0, 128, 255]),
    (np.array([[np.nan, 0.0, 1.0]], dtype=np.float32), [0, 0, 255]),
])
def test_array_to_image_scales_by_dtype_and_range(arr, expect):
    img = array_to_image(arr)
    assert img.mode == "L"
    assert np.asarray(img).ravel().tolist() == expect


def test_array_to_image_shapes():
    assert array_to_image(np.zeros((5, 6, 1), np.uint8)).mode == "L"
    assert array_to_image(np.zeros((5, 6, 2), np.uint8)).mode == "LA"
    assert array_to_image(np.zeros((5, 6, 3), np.float32)).mode == "RGB"
    rgba = array_to_image(np.dstack([np.full((5, 6, 3), 200.0), np.full((5, 6), 1.0)]))
    assert rgba.mode == "RGBA" and rgba.getpixel((0, 0)) == (200, 200, 200, 255)
    for bad in (np.zeros((5,)), np.zeros((5, 6, 5)), np.zeros((0, 6)), np.array([["a"]])):
        with pytest.raises(ImageError):
            array_to_image(bad)


def test_fit_rgb_any_mode_gives_rgb_uint8():
    base = Image.linear_gradient("L").resize((64, 48))
    transparent = Image.new("RGBA", (64, 48), (0, 0, 0, 0))
    sixteen = Image.fromarray((np.asarray(base).astype(np.uint16) * 257))
    for img in (base, base.convert("RGB"), base.convert("P"), base.convert("LA"), base.convert("CMYK"),
                base.convert("1"), sixteen, transparent, np.asarray(base), np.asarray(base.convert("RGBA"))):
        x = fit_rgb(img, (20, 30))
        assert x.shape == (20, 30, 3) and x.dtype == np.uint8
    assert fit_rgb(transparent, (4, 4)).min() == 255  # transparency is flattened on white
    assert abs(int(fit_rgb(sixteen, (20, 30)).mean()) - int(fit_rgb(base, (20, 30)).mean())) <= 1


def test_flatten_alpha_background():
    img = Image.new("LA", (4, 4), (0, 0))
    assert flatten_alpha(img).getpixel((0, 0)) == (255, 255, 255)
    assert flatten_alpha(img, background=0).getpixel((0, 0)) == (0, 0, 0)
