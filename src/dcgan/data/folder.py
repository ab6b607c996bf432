"""Image folders: one sub-folder per class (or flat, unlabelled), optional train/val splits."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm import tqdm

from dcgan.errors import UserError, quoted

if TYPE_CHECKING:
    import torch

# Held-out split folder names, in order of preference, and the split name we store them as.
HELD_OUT = (("val", "val"), ("valid", "val"), ("test", "test"))


def find_splits(root: str | Path) -> dict[str, Path]:
    """``{"train": dir, "val"|"test": dir}`` when ``root`` has ``train/``, else ``{"train": root}``."""
    root = Path(root)
    if not (root / "train").is_dir():
        return {"train": root}
    splits = {"train": root / "train"}
    for folder, split in HELD_OUT:
        if (root / folder).is_dir():
            splits[split] = root / folder
            break
    return splits


# torch and torchvision are imported inside the functions: ~2 s that a download of IDX
# files (which imports this module) skips.


def _is_image(path: Path) -> bool:
    from torchvision.datasets.folder import IMG_EXTENSIONS

    return path.is_file() and path.suffix.lower() in IMG_EXTENSIONS


def list_images(folder: Path, classes: list[str] | None = None) -> tuple[list[tuple[Path, int]], list[str]]:
    """Image files under ``folder`` with labels, and the class names (empty when flat).

    Args:
        folder: a split folder.
        classes: the train split's classes, so held-out labels use the same indices.

    Raises:
        UserError: no images, or a held-out class that train does not have.
    """
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    subdirs = [d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")]
    if subdirs:
        found, _ = find_classes(folder)
        classes = classes if classes is not None else found
        extra = sorted(set(found) - set(classes))
        if extra:
            raise UserError(f"{quoted(folder)}: classes {extra} are not in the train split")
        samples = make_dataset(folder, {c: i for i, c in enumerate(classes)},
                               extensions=IMG_EXTENSIONS, allow_empty=True)
        items = [(Path(p), y) for p, y in samples]
    else:
        classes = []
        items = [(p, -1) for p in sorted(folder.iterdir()) if _is_image(p)]
    if not items:
        raise UserError(f"{quoted(folder)}: no images ({', '.join(IMG_EXTENSIONS)}) found")
    return items, classes


# Integer greyscale wider than 8 bits: Pillow's modes for 16-bit PNGs and TIFFs ("I" is how
# older Pillow opens a 16-bit PNG). Converting them with Pillow's convert("L") clips every
# value above 255 to white instead of scaling (70% of a 16-bit photo's pixels saturate).
_WIDE = ("I;16", "I;16B", "I;16L", "I;16N", "I")
BACKGROUND = (255, 255, 255)  # what transparent pixels become: white, as a browser shows them


def _to_8bit(img: Image.Image) -> Image.Image:
    """A 16-bit greyscale image as 8-bit "L": value v (0..65535) -> round(v / 257) (0..255)."""
    import numpy as np

    wide = np.asarray(img, dtype=np.float64)
    return Image.fromarray(np.clip(np.rint(wide / 257.0), 0, 255).astype(np.uint8), "L")


def as_mode(img: Image.Image, mode: str) -> Image.Image:
    """``img`` as 8-bit ``mode`` ("RGB" or "L"), read as its file means it: EXIF orientation
    applied, 16-bit greyscale scaled (not clipped), palette colours looked up, transparency
    composited onto :data:`BACKGROUND`.

    Raises:
        ValueError: a mode no image folder should hold (floating-point pixels, say).
    """
    img = ImageOps.exif_transpose(img)  # a phone photo stored sideways, as it is shown
    if img.mode in _WIDE:
        img = _to_8bit(img)
    elif img.mode == "F":
        raise ValueError("floating-point pixels (mode F); save it as 8- or 16-bit")
    if img.mode == "P":  # palette: its transparency, if any, becomes an alpha channel
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (*BACKGROUND, 255)), rgba)
    return img.convert(mode)


def _decode(path: Path, mode: str) -> Image.Image:
    try:
        with Image.open(path) as img:
            img.load()
            return as_mode(img, mode)
    except Image.DecompressionBombError:  # Pillow's guard: more pixels than any photo has
        raise UserError(f"{quoted(path)}: refusing to decode it: its header declares more than "
                        f"{2 * Image.MAX_IMAGE_PIXELS:,} pixels (a decompression bomb); remove "
                        "it") from None
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise UserError(f"{quoted(path)}: unreadable image ({' '.join(str(err).split())}); "
                        "remove or replace it") from None


def check_source(root: Path) -> None:
    """Every check preprocess makes, made on ``root`` itself: splits, classes, each image.

    The download stage runs it on a local folder before copying it, so an error names the
    user's own file, and the fixed folder is read again by the next ``dvc repro`` (a stage
    that failed has nothing cached).
    """
    classes = None
    for split, split_dir in find_splits(root).items():  # train first
        items, found = list_images(split_dir, classes)
        classes = found if classes is None else classes
        for path, _ in tqdm(items, desc=f"check {split}", unit="img", leave=False):
            if not any(part.startswith(".") for part in path.relative_to(root).parts):
                _decode(path, "RGB")  # hidden files are not copied, so not read later


def load_image(path: Path, size: int, channels: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Decode ``path`` to uint8 (C, size, size): shorter side resized (antialiased),
    center-cropped. Returns it with the image's own (width, height)."""
    img = _decode(path, "RGB" if channels == 3 else "L")
    from torchvision.transforms.v2 import functional as TF

    x = TF.pil_to_tensor(img)
    x = TF.resize(x, [size], antialias=True)
    return TF.center_crop(x, [size, size]), img.size


def load_images(items: list[tuple[Path, int]], size: int, channels: int, desc: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Load ``items`` into uint8 images (N, C, size, size) and int64 labels (N,).

    Images whose shorter side is under half of ``size`` are upscaled more than twice: they
    train as blurs, so one warning line names them (the first five) and counts them.
    """
    import torch

    images = torch.empty((len(items), channels, size, size), dtype=torch.uint8)
    small = []
    for i, (path, _) in enumerate(tqdm(items, desc=desc, unit="img", leave=False)):
        images[i], (w, h) = load_image(path, size, channels)
        if min(w, h) < size / 2:
            small.append(f"{quoted(path.name)} ({w}x{h})")
    if small:
        more = f" and {len(small) - 5} more" if len(small) > 5 else ""
        print(f"preprocess: warning: {len(small)} of {len(items)} images are far smaller than "
              f"image_size {size} (shorter side under {size // 2} px) and were upscaled: "
              f"{', '.join(small[:5])}{more}; remove them or lower preprocess.image_size")
    labels = torch.tensor([y for _, y in items], dtype=torch.int64)
    return images, labels
