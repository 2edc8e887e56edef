"""Turning server-supplied names into files inside the output folder, and nowhere else."""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from ..errors import UnsafeOutputName

_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {
    f"{p}{i}" for p in ("COM", "LPT") for i in range(1, 10)
}
_BAD_CHARS = re.compile(r'[\x00-\x1f<>:"/\\|?*]')
MAX_NAME = 120

def safe_name(name: str) -> str:
    """One path component that is valid on Windows, macOS and Linux and cannot climb out.

    Server names are never trusted: only the last component survives, control and reserved
    characters go, reserved device names get a prefix and the length is capped.
    """
    name = unicodedata.normalize("NFC", name.replace("\\", "/")).split("/")[-1]
    name = _BAD_CHARS.sub("_", name).strip(" .")
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    stem = _unreserved(stem)
    ext = ext[:16]
    stem = stem[: MAX_NAME - len(ext) - 1]
    result = (f"{stem}.{ext}" if ext else stem).rstrip(" .")
    if not stem or result in (".", ".."):
        raise UnsafeOutputName(f"The server sent an unusable output file name {name[:60]!r}.")
    return result


def safe_subfolder(subfolder: str) -> list[str]:
    """Sub-folder parts with anything that could climb out dropped."""
    parts = re.split(r"[\\/]+", subfolder or "")
    kept = []
    for part in parts:
        part = _BAD_CHARS.sub("_", part).strip(" .")
        if part and part not in (".", ".."):
            kept.append(_unreserved(part[:MAX_NAME]).strip(" ."))
    return kept[:8]


def _unreserved(stem: str) -> str:
    """Windows device names (CON, nul.txt, COM1.tar...) get a prefix: they are not files."""
    return "_" + stem if stem.split(".")[0].strip(" ").upper() in _WINDOWS_RESERVED else stem


def output_path(out_dir: Path, filename: str, subfolder: str = "") -> Path:
    """A fresh path inside out_dir for a server file; an existing file is never overwritten."""
    root = out_dir.resolve()
    folder = root.joinpath(*safe_subfolder(subfolder))
    name = safe_name(filename)
    path = unique_path(folder / name)
    if not path.resolve().is_relative_to(root):
        raise UnsafeOutputName(f"Refusing to write {filename!r} outside {root}.")
    return path


def unique_path(path: Path) -> Path:
    if not path.exists():
        return path
    for n in range(1, 100_000):
        candidate = path.with_name(f"{path.stem}_{n}{path.suffix}")
        if not candidate.exists():
            return candidate
    raise UnsafeOutputName(f"Too many files named like {path.name} in {path.parent}.")


def write_stream(chunks: Iterable[bytes], path: Path) -> Path:
    """Write chunks to path via a temporary file, so a broken download leaves nothing behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    try:
        with open(partial, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path
