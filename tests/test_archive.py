"""Archive extraction refuses entries that would land outside the target."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile

import pytest

from dcgan.data.archive import extract
from dcgan.errors import UserError


def _zip(path, entries):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries:
            if isinstance(data, zipfile.ZipInfo):
                zf.writestr(data, b"target")
            else:
                zf.writestr(name, data)
    return path


def test_good_zip_extracts(tmp_path):
    z = _zip(tmp_path / "ok.zip", [("afhq/train/cat/a.txt", b"1"), ("afhq/val/dog/b.txt", b"2")])
    extract(z, tmp_path / "out")
    assert (tmp_path / "out/afhq/train/cat/a.txt").read_bytes() == b"1"


@pytest.mark.parametrize("name, why", [
    ("../evil.txt", "escapes the target"),
    ("a/../../evil.txt", "escapes the target"),
    ("/etc/evil.txt", "absolute path"),
    ("C:/evil.txt", "absolute path"),
])
def test_zip_escape_refused_and_nothing_written(tmp_path, name, why):
    z = _zip(tmp_path / "bad.zip", [("fine.txt", b"ok"), (name, b"x")])
    with pytest.raises(UserError, match=why):
        extract(z, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()
    assert list((tmp_path / "out").iterdir()) == []  # checked before anything is written


def test_zip_symlink_refused(tmp_path):
    info = zipfile.ZipInfo("link")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    z = _zip(tmp_path / "link.zip", [("link", info)])
    with pytest.raises(UserError, match="refusing link entry 'link'"):
        extract(z, tmp_path / "out")


@pytest.mark.parametrize("kind", ["dotdot", "symlink"])
def test_tar_escape_refused(tmp_path, kind):
    path = tmp_path / "bad.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo("../evil.txt" if kind == "dotdot" else "link")
        if kind == "symlink":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(info, io.BytesIO(b"") if kind == "dotdot" else None)
    with pytest.raises(UserError, match="refusing"):
        extract(path, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_corrupt_and_unknown_archives(tmp_path):
    good = _zip(tmp_path / "good.zip", [("a.txt", b"x" * 1000)])
    data = bytearray(good.read_bytes())
    data[40:60] = b"\xff" * 20  # damage the member's compressed bytes, keep the directory
    (tmp_path / "broken.zip").write_bytes(bytes(data))
    with pytest.raises(UserError, match="broken.zip: corrupt archive"):
        extract(tmp_path / "broken.zip", tmp_path / "out")
    (tmp_path / "plain.bin").write_bytes(b"hello")
    with pytest.raises(UserError, match="not a zip or tar archive"):
        extract(tmp_path / "plain.bin", tmp_path / "out2")


def _declare(path, size):
    """Rewrite a one-entry zip's declared uncompressed size (local and central headers): a
    bomb's header, without writing the bytes it declares."""
    data = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.index(signature)
        data[at + offset:at + offset + 4] = size.to_bytes(4, "little")
    path.write_bytes(bytes(data))
    return path


def test_zip_bomb_refused_in_one_line_before_writing(tmp_path):
    z = _declare(_zip(tmp_path / "bomb.zip", [("afhq/a.png", b"x" * 100)]), 2**30)
    assert zipfile.ZipFile(z).infolist()[0].file_size == 2**30  # what the archive declares
    with pytest.raises(UserError, match="decompression bomb") as err:
        extract(z, tmp_path / "out", shown="the mirror's bomb.zip")
    line = str(err.value)
    assert "\n" not in line and line.startswith("the mirror's bomb.zip: ")
    assert list((tmp_path / "out").iterdir()) == []


def test_archive_larger_than_free_space_refused(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    z = _zip(tmp_path / "big.zip", [("a.bin", b"x" * 1000)])
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(2**30, 2**30 - 10, 10))
    with pytest.raises(UserError, match=r"big.zip: extracting needs .* free; free some space"):
        extract(z, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []
