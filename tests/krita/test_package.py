"""The Krita zips: the layout Tools › Scripts › Import Python Plugin from File expects, and a
compiled pydantic-core for every Python that the Krita builds of each OS embed."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest

from build_addons import KRITA_PYTHONS, KRITA_TARGETS, build_krita
from tests.binaries import cpu, extension_suffix

# Krita's official builds (README § Versions): 3.10 in 5.2, 3.13 in 5.3 and 6.0, on every
# OS; Linux distributions' Krita packages use the system Python. Written here, not read
# from the build, so that a zip missing one fails.
PROMISED: dict[str, tuple[str, str, set[str]]] = {  # target -> (system, CPU, Pythons)
    "linux-x64": ("linux", "x86_64", {"3.10", "3.11", "3.12", "3.13"}),
    "windows-x64": ("windows", "x86_64", {"3.10", "3.13"}),
    "macos-arm64": ("macos", "arm64", {"3.10", "3.13"}),
    "macos-x64": ("macos", "x86_64", {"3.10", "3.13"}),
}


def test_zip_has_desktop_file_package_core_and_pydantic_core_per_python(
    krita_data: Path,
) -> None:
    pykrita = krita_data / "krita" / "pykrita"
    desktop = (pykrita / "comfyrelay_krita.desktop").read_text()
    assert "X-KDE-Library=comfyrelay_krita" in desktop
    package = pykrita / "comfyrelay_krita"
    assert (package / "__init__.py").is_file()
    assert (package / "comfyrelay" / "jobs" / "runner.py").is_file()
    for name in (
        "requests",
        "urllib3",
        "idna",
        "certifi",
        "charset_normalizer",
        "websocket",
        "pydantic",
        "annotated_types",
        "typing_inspection",
    ):
        assert (package / "vendor" / name / "__init__.py").is_file(), name
    compiled = {p.name for p in (package / "vendor" / "pydantic_core").glob("_pydantic_core.*")}
    for python in KRITA_PYTHONS["linux-x64"]:
        tag = python.replace(".", "")
        assert any(f"cpython-{tag}-" in name for name in compiled), (python, compiled)


@pytest.fixture(scope="module")
def zips(linux_zip: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    # The session already built linux-x64; build only the other targets.
    others = [target for target in KRITA_TARGETS if target != "linux-x64"]
    built = [linux_zip, *build_krita(tmp_path_factory.mktemp("dist"), others)]
    return {target: next(z for z in built if z.stem.endswith(target)) for target in PROMISED}


def test_every_os_is_checked() -> None:
    assert set(PROMISED) == set(KRITA_TARGETS)


@pytest.mark.parametrize("target", list(PROMISED))
def test_each_zip_carries_pydantic_core_for_every_python_its_krita_builds_embed(
    target: str, zips: dict[str, Path], tmp_path: Path
) -> None:
    system, arch, pythons = PROMISED[target]
    vendor = "comfyrelay_krita/vendor/"
    with zipfile.ZipFile(zips[target]) as zf:
        names = zf.namelist()
        modules = {n.rsplit("/", 1)[1]: zf.read(n) for n in names
                   if n.startswith(vendor + "pydantic_core/_pydantic_core.")
                   and not n.endswith(".pyi")}
        requires = zf.read(next(n for n in names if re.match(
            vendor + r"pydantic-[^/]*\.dist-info/METADATA$", n))).decode()
    for python in pythons:
        name = "_pydantic_core" + extension_suffix(python, system, arch)
        assert name in modules, (python, sorted(modules))
        path = tmp_path / name
        path.write_bytes(modules[name])
        assert cpu(path) in (arch, "universal2"), (name, cpu(path))
    # One pydantic-core, the very version the vendored pydantic requires.
    cores = {re.match(vendor + r"pydantic_core-([^/]+)\.dist-info/", n) for n in names} - {None}
    versions = {m.group(1) for m in cores if m}
    assert len(versions) == 1 and f"pydantic-core=={versions.pop()}" in requires


def test_zip_root_holds_only_the_plugin(zips: dict[str, Path]) -> None:
    with zipfile.ZipFile(zips["linux-x64"]) as zf:
        roots = {name.split("/")[0] for name in zf.namelist()}
        assert not any("__pycache__" in n for n in zf.namelist())
    assert roots == {"comfyrelay_krita.desktop", "comfyrelay_krita"}
