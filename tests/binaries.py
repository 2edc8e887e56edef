"""What a compiled Python module is built for, read from the file itself: the extension
suffix Python looks for, and the CPU in its executable header (ELF, Mach-O or PE)."""

from __future__ import annotations

import struct
from pathlib import Path

# e_machine (ELF), cputype (Mach-O), Machine (PE/COFF) -> the name used in platform tags.
ELF = {62: "x86_64", 183: "aarch64"}
MACHO = {0x01000007: "x86_64", 0x0100000C: "arm64"}
PE = {0x8664: "x86_64", 0xAA64: "arm64"}


def cpu(path: Path) -> str:
    """The CPU a shared library is built for; "universal2" for a fat Mach-O with both."""
    head = path.read_bytes()[:4096]
    if head[:4] == b"\x7fELF":
        return ELF.get(struct.unpack_from("<H", head, 18)[0], "?")
    if head[:4] == b"\xcf\xfa\xed\xfe":  # 64-bit Mach-O, little-endian
        return MACHO.get(struct.unpack_from("<I", head, 4)[0], "?")
    if head[:4] == b"\xca\xfe\xba\xbe":  # fat Mach-O: big-endian list of slices
        count = struct.unpack_from(">I", head, 4)[0]
        cpus = {MACHO.get(struct.unpack_from(">I", head, 8 + 20 * i)[0]) for i in range(count)}
        return "universal2" if cpus >= {"x86_64", "arm64"} else "?"
    if head[:2] == b"MZ":
        pe = struct.unpack_from("<I", head, 0x3C)[0]
        if head[pe : pe + 4] == b"PE\0\0":
            return PE.get(struct.unpack_from("<H", head, pe + 4)[0], "?")
    return "?"


def extension_suffix(python: str, system: str, arch: str) -> str:
    """The file-name ending CPython `python` (as "3.13") on `system` (linux, macos,
    windows) looks for when importing a compiled module."""
    tag = python.replace(".", "")
    if system == "windows":
        return f".cp{tag}-win_amd64.pyd" if arch == "x86_64" else f".cp{tag}-win_arm64.pyd"
    if system == "macos":
        return f".cpython-{tag}-darwin.so"
    return f".cpython-{tag}-{arch}-linux-gnu.so"
