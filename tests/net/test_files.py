"""Server-supplied names can never put a file outside the output folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from comfyrelay.errors import UnsafeOutputName
from comfyrelay.net.files import output_path, safe_name, write_stream

HOSTILE = [
    ("../../evil.png", ""),
    ("/etc/passwd", ""),
    ("..\\..\\win.png", ""),
    ("a\x00b.png", ""),
    ("CON.png", ""),
    ("x" * 300 + ".png", ""),
    ("ok.png", "../../.."),
    ("ok.png", "/abs/olute"),
    ("ok.png", "C:\\Windows"),
]


@pytest.mark.parametrize(("filename", "subfolder"), HOSTILE)
def test_hostile_names_stay_inside(tmp_path: Path, filename: str, subfolder: str) -> None:
    out = tmp_path / "out"
    path = output_path(out, filename, subfolder)
    assert path.resolve().is_relative_to(out.resolve())
    assert "\x00" not in str(path)
    assert len(path.name) <= 120
    assert path.name.split(".")[0].upper() != "CON"


def test_existing_files_are_never_overwritten(tmp_path: Path) -> None:
    first = write_stream([b"one"], output_path(tmp_path, "r.png"))
    second = write_stream([b"two"], output_path(tmp_path, "r.png"))
    assert first != second
    assert first.read_bytes() == b"one" and second.read_bytes() == b"two"


def test_broken_stream_leaves_no_file(tmp_path: Path) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"partial"
        raise OSError("connection reset")

    target = output_path(tmp_path, "r.png")
    with pytest.raises(OSError):
        write_stream(chunks(), target)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["..", ".", "", "///", " . "])
def test_unusable_names_are_refused(name: str) -> None:
    with pytest.raises(UnsafeOutputName):
        safe_name(name)


def test_subfolders_are_kept_when_harmless(tmp_path: Path) -> None:
    path = output_path(tmp_path, "a.png", "batch/frames")
    assert path == tmp_path.resolve() / "batch" / "frames" / "a.png"
