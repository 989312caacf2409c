"""The one intake path: formats, conversions, orientation, and clear rejections."""

import io

import numpy as np
import pytest
from PIL import Image

from catseg.data.decoding import MAX_PIXELS, PhotoRejected, decode_photo
from conftest import drawn_cat, encode


@pytest.mark.parametrize("format", ["JPEG", "PNG", "WEBP", "BMP", "TIFF"])
def test_every_supported_format_decodes_to_rgb8(format):
    photo, _ = drawn_cat()
    decoded = decode_photo(encode(photo, format), f"cat.{format.lower()}")
    assert decoded.pixels.shape == photo.shape and decoded.pixels.dtype == np.uint8
    if format in ("PNG", "BMP", "TIFF"):
        assert np.array_equal(decoded.pixels, photo)


@pytest.mark.parametrize(
    "mode",
    ["L", "RGBA", "CMYK", "I;16", "P"],
)
def test_modes_become_8bit_rgb(mode):
    photo, _ = drawn_cat()
    image = Image.fromarray(photo)
    if mode == "I;16":
        grey = (np.asarray(image.convert("L"), dtype=np.uint16) * 257)
        image = Image.frombytes("I;16", (grey.shape[1], grey.shape[0]), grey.astype("<u2").tobytes())
        data = encode_image(image, "PNG")
        expected = np.asarray(Image.fromarray(photo).convert("L"))
        decoded = decode_photo(data, "deep.png").pixels
        assert np.abs(decoded[..., 0].astype(int) - expected).max() <= 1
    else:
        image = image.convert(mode)
        data = encode_image(image, "JPEG" if mode == "CMYK" else "PNG")
        decoded = decode_photo(data, f"{mode}.img").pixels
    assert decoded.ndim == 3 and decoded.shape[2] == 3 and decoded.dtype == np.uint8


def encode_image(image: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def test_transparent_pixels_become_white():
    rgba = np.zeros((20, 20, 4), dtype=np.uint8)
    rgba[:10, :, :] = (255, 0, 0, 255)
    decoded = decode_photo(encode(rgba), "logo.png").pixels
    assert tuple(decoded[0, 0]) == (255, 0, 0)
    assert tuple(decoded[15, 0]) == (255, 255, 255)


def test_exif_rotated_photo_comes_out_upright():
    landscape = np.zeros((40, 80, 3), dtype=np.uint8)
    landscape[:, :40] = 255  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    data = encode_image(Image.fromarray(landscape), "JPEG", exif=exif, quality=95)
    decoded = decode_photo(data, "portrait.jpg")
    assert decoded.pixels.shape[:2] == (80, 40)
    assert decoded.was_converted
    # The white left half ends up on top after a clockwise turn.
    assert decoded.pixels[:30].mean() > 200 and decoded.pixels[-30:].mean() < 50


def test_rejections_name_the_file():
    photo, _ = drawn_cat()
    jpeg = encode(photo, "JPEG")
    cases = {
        "empty.jpg": (b"", "empty"),
        "notes.jpg": (b"these are my notes, not a photo", "not a photo"),
        "cut.jpg": (jpeg[: len(jpeg) // 2], "damaged"),
    }
    for name, (data, words) in cases.items():
        with pytest.raises(PhotoRejected) as error:
            decode_photo(data, name)
        assert name in str(error.value) and words in str(error.value)


def test_decompression_bomb_is_rejected_before_decoding():
    # A real 20000x20000 PNG header on a tiny file: the pixel limit stops it by the header.
    image = Image.new("1", (20000, 20000))
    data = encode_image(image, "PNG")
    with pytest.raises(PhotoRejected) as error:
        decode_photo(data, "huge.png")
    assert "400 megapixels" in str(error.value)
    assert f"{MAX_PIXELS / 1e6:.0f} megapixels" in str(error.value)


def test_tiny_images_are_rejected():
    with pytest.raises(PhotoRejected, match="too small"):
        decode_photo(encode(np.zeros((4, 4, 3), dtype=np.uint8)), "dot.png")


def test_an_upright_rgb_jpeg_is_kept_as_it_came():
    photo, _ = drawn_cat()
    decoded = decode_photo(encode(photo, "JPEG"), "cat.jpg")
    assert decoded.source_format == "JPEG" and not decoded.was_converted
    grey = decode_photo(encode_image(Image.fromarray(photo[..., 0]), "JPEG"), "grey.jpg")
    assert grey.was_converted  # greyscale JPEGs become RGB, so they are stored converted
