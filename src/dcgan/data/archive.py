"""Safe archive extraction: entries that would land outside the target are refused.

zipfile has no equivalent of tarfile's extraction filters and only *rewrites* unsafe names
(it drops ``..`` and leading ``/``), so a hostile or broken archive would be silently
reshaped; we refuse it instead, with the entry named. tar members get the same check and
then ``filter="data"`` as a second line of defence.

Sizes: the entries' declared sizes are added up before anything is written and checked
against the free space and a ratio cap (a 1 MB zip declaring 1 GiB is a bomb, not a data
set). zipfile stops reading an entry at its declared size (and then fails its CRC), so a
zip cannot write more than it declares; a tar's member sizes are its real sizes.
"""

from __future__ import annotations

import shutil
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from dcgan.errors import UserError

# Image data sets barely compress (PNG and JPEG are compressed already): Animal Faces' zip
# is ~1.0x. Past this ratio, and past RATIO_FLOOR bytes (a small file of zeros is harmless),
# an archive is refused as a decompression bomb.
RATIO_CAP = 100
RATIO_FLOOR = 64 * 2**20
FREE_MARGIN = 64 * 2**20  # left free beside what the archive declares


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def _check_sizes(archive: Path, dest: Path, shown: str, declared: int) -> None:
    """Refuse an archive whose declared contents would not fit, or that is a bomb."""
    packed = max(1, archive.stat().st_size)
    if declared > RATIO_FLOOR and declared > RATIO_CAP * packed:
        raise UserError(f"{shown}: refusing to extract: it declares {_gib(declared)} from "
                        f"{_gib(packed)} (over {RATIO_CAP}x, a decompression bomb, not image "
                        "data); re-download the archive")
    free = shutil.disk_usage(dest).free
    if declared + FREE_MARGIN > free:
        raise UserError(f"{shown}: extracting needs {_gib(declared)} but {dest} has "
                        f"{_gib(free)} free; free some space and rerun")


def _check_member(archive: Path | str, name: str, is_link: bool) -> PurePosixPath:
    """Return the safe relative path of an entry, or raise naming the offending entry."""
    normalized = name.replace("\\", "/")
    rel = PurePosixPath(normalized)
    if is_link:
        raise UserError(f"{archive}: refusing link entry {name!r}; re-download the archive")
    if normalized.startswith("/") or (rel.parts and ":" in rel.parts[0]):
        raise UserError(f"{archive}: refusing absolute path entry {name!r}; re-download the archive")
    if ".." in rel.parts:
        raise UserError(f"{archive}: refusing entry {name!r} that escapes the target folder; "
                        "re-download the archive")
    return rel


def _extract_zip(archive: Path, dest: Path, shown: str) -> None:
    with zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        for info in members:  # check everything before writing anything
            mode = info.external_attr >> 16
            _check_member(shown, info.filename, stat.S_ISLNK(mode))
        _check_sizes(archive, dest, shown, sum(info.file_size for info in members))
        for info in tqdm(members, desc=f"extract {archive.name}", unit="file", leave=False):
            target = dest / _check_member(archive, info.filename, False)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)


def _extract_tar(archive: Path, dest: Path, shown: str) -> None:
    with tarfile.open(archive) as tf:
        members = tf.getmembers()
        for m in members:
            _check_member(shown, m.name, m.issym() or m.islnk())
        _check_sizes(archive, dest, shown, sum(m.size for m in members if m.isfile()))
        tf.extractall(dest, members=members, filter="data")


def extract(archive: str | Path, dest: str | Path, shown: str | None = None) -> None:
    """Extract a zip or tar archive (any compression tarfile reads) into ``dest``.

    ``shown`` is how errors name the archive: the user's own file (a mirror's copy) or the
    download, not the temp copy being read.

    Raises:
        UserError: the archive is corrupt, of an unknown kind, or has an unsafe entry.
    """
    archive, dest = Path(archive), Path(dest)
    shown = shown or str(archive)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, dest, shown)
        elif tarfile.is_tarfile(archive):
            _extract_tar(archive, dest, shown)
        else:
            raise UserError(f"{shown}: not a zip or tar archive; re-download it")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as err:
        raise UserError(f"{shown}: corrupt archive ({err}); delete it and re-download") from None
