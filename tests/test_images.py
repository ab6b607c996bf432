"""Image files read as they mean it: 16-bit, palette, alpha, EXIF-rotated, far too small."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dcgan.data.folder import _decode, load_images
from dcgan.data.preprocess import preprocess
from dcgan.data.download import download
from dcgan.data.prepared import load_split
from dcgan.data.sources import parse_dataset
from dcgan.errors import UserError


def _gradient(h: int = 24, w: int = 32) -> np.ndarray:
    """An 8-bit greyscale picture using the whole range: 0 at the left, 255 at the right."""
    return np.tile(np.linspace(0, 255, w).round().astype(np.uint8), (h, 1))


def test_a_16_bit_png_reads_like_the_same_picture_in_8_bits(tmp_path):
    eight = _gradient()
    Image.fromarray(eight).save(tmp_path / "8.png")
    Image.fromarray(eight.astype(np.uint16) * 257).save(tmp_path / "16.png")  # 0..65535
    with Image.open(tmp_path / "16.png") as img:
        assert img.mode.startswith("I")  # Pillow opens it as 16-bit integers
    for mode in ("L", "RGB"):
        a, b = (np.asarray(_decode(tmp_path / f, mode)) for f in ("8.png", "16.png"))
        assert np.array_equal(a, b), mode  # Pillow's own convert saturates 70% of it to 255
    assert (np.asarray(_decode(tmp_path / "16.png", "L")) == 255).mean() < 0.05


def test_palette_and_alpha_images_are_their_colours_on_white(tmp_path):
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[:, :8] = (200, 30, 30)
    rgb[:, 8:] = (20, 40, 220)
    Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=4).save(tmp_path / "p.png")
    assert np.array_equal(np.asarray(_decode(tmp_path / "p.png", "RGB")), rgb)
    la = np.stack([_gradient(16, 16), np.full((16, 16), 255, np.uint8)], axis=-1)
    la[:, :8, 1] = 0  # the left half fully transparent
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    grey = np.asarray(_decode(tmp_path / "la.png", "L"))
    assert (grey[:, :8] == 255).all() and np.array_equal(grey[:, 8:], la[:, 8:, 0])
    rgba = np.concatenate([rgb, np.full((16, 16, 1), 128, np.uint8)], axis=-1)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    half = np.asarray(_decode(tmp_path / "rgba.png", "RGB")).astype(int)
    assert np.abs(half - (rgb.astype(int) * 128 + 255 * 127) / 255).max() <= 1  # half-way to white


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((20, 40, 3), np.uint8)  # landscape as stored, a white square top-left
    pixels[:6, :6] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera was turned; show it rotated 90° clockwise
    Image.fromarray(pixels).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    upright = np.asarray(_decode(tmp_path / "phone.jpg", "L"))
    assert upright.shape == (40, 20)  # portrait, as every viewer shows it
    assert upright[:6, -6:].mean() > 200 and upright[:6, :6].mean() < 50  # now top-right


def test_far_too_small_images_are_named_in_one_warning_line(tmp_path, capsys):
    Image.new("RGB", (1, 1), (0, 0, 0)).save(tmp_path / "dot.png")
    Image.new("RGB", (64, 48), (9, 9, 9)).save(tmp_path / "fine.png")
    Image.new("RGB", (20, 30), (9, 9, 9)).save(tmp_path / "thumb.png")
    images, _ = load_images([(tmp_path / n, -1) for n in ("dot.png", "fine.png", "thumb.png")],
                            64, 3, "test")
    assert images.shape == (3, 3, 64, 64)
    (line,) = capsys.readouterr().out.splitlines()
    assert line == ("preprocess: warning: 2 of 3 images are far smaller than image_size 64 "
                    "(shorter side under 32 px) and were upscaled: dot.png (1x1), thumb.png (20x30);"
                    " remove them or lower preprocess.image_size")


def test_a_16_bit_folder_preprocesses_like_its_8_bit_twin(tmp_path):
    for bits in (8, 16):
        folder = tmp_path / f"src{bits}"
        folder.mkdir()
        for i in range(4):
            picture = np.roll(_gradient(32, 32), 8 * i, axis=1)
            Image.fromarray(picture.astype(np.uint16) * 257 if bits == 16 else picture).save(
                folder / f"{i}.png")
        download(parse_dataset(f"folder:{folder}"), tmp_path / f"raw{bits}")
        preprocess(tmp_path / f"raw{bits}", tmp_path / f"prep{bits}", 0, image_size=32, channels=1)
    a, b = (load_split(tmp_path / f"prep{bits}", "train")[0] for bits in (8, 16))
    assert a.shape == (4, 1, 32, 32) and (a == b).all()


@pytest.mark.parametrize("mode", ["F"])
def test_a_mode_no_image_folder_should_hold_is_one_line(tmp_path, mode):
    from dcgan.errors import UserError

    Image.new(mode, (8, 8)).save(tmp_path / "x.tif")
    with pytest.raises(UserError, match=r"x.tif: unreadable image \(floating-point pixels"):
        _decode(tmp_path / "x.tif", "L")


def _png_declaring(path, width: int, height: int):
    """A tiny PNG whose header declares ``width`` x ``height`` (a decompression bomb's
    header, without its pixels): Pillow reads the size before any pixel."""
    import struct
    import zlib

    Image.new("L", (8, 8)).save(path)
    data = bytearray(path.read_bytes())
    at = data.index(b"IHDR")
    data[at + 4:at + 12] = struct.pack(">II", width, height)
    data[at + 17:at + 21] = struct.pack(">I", zlib.crc32(bytes(data[at:at + 17])))
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("name", ["bomb.png", "bomb\nerror: fake second line.png"])
def test_a_png_decompression_bomb_in_a_folder_is_one_line_naming_it(tmp_path, name):
    """A 27-line traceback that never named the file; a newline in a name cannot split the
    line (the name is quoted)."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.new("RGB", (32, 32)).save(folder / "good.png")
    bomb = _png_declaring(folder / name, 50_000, 50_000)
    with pytest.raises(UserError, match="decompression bomb") as err:
        download(parse_dataset(f"folder:{folder}"), tmp_path / "raw")
    line = str(err.value)
    assert "\n" not in line and (str(bomb) if "\n" not in name else repr(str(bomb))) in line


def test_an_unreadable_image_whose_name_holds_a_newline_is_one_line(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.new("RGB", (32, 32)).save(folder / "good.png")
    (folder / "bad\nname.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(UserError, match="unreadable image") as err:
        download(parse_dataset(f"folder:{folder}"), tmp_path / "raw")
    assert "\n" not in str(err.value) and repr(str(folder / "bad\nname.png")) in str(err.value)
