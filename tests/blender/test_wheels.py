"""Every Blender platform zip holds what each Blender in its manifest's range needs.

Real bpy runs only on Linux x86-64 here (test_versions.py), so every platform and Python is
also checked through the zip's wheels, after Blender's own validation of the zip: for each
Python of the releases the manifest admits and the platform of the zip, pip resolves the
core's requirements from the zip's wheels/ alone, offline, and the compiled module it picks
must be built for that Python and CPU. (Blender 4.2.13 and later install only the wheels
whose tags match their own Python and platform, as test_versions.py sees in bpy.)"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

from build_addons import BLENDER_PYTHONS, BLENDER_TARGETS, build_blender, project_meta
from tests.binaries import cpu, extension_suffix
from tests.blender.conftest import SITE

# The oldest machine of each platform Blender 4.2 and later run on (Blender's system
# requirements: glibc 2.28, macOS 11); chosen here, not by the build.
MACHINES: dict[str, tuple[str, str]] = {  # target -> (system, CPU)
    "linux-x64": ("linux", "x86_64"),
    "linux-arm64": ("linux", "aarch64"),
    "macos-x64": ("macos", "x86_64"),
    "macos-arm64": ("macos", "arm64"),
    "windows-x64": ("windows", "x86_64"),
}


def platform_tags(system: str, arch: str) -> list[str]:
    """Every wheel platform tag such a machine accepts (the packaging spec's rules; pip
    given --platform takes each tag as it is, so the older ones are listed too)."""
    if system == "windows":
        return ["win_amd64"]
    if system == "macos":
        versions = [(10, n) for n in range(9, 16)] + [(11, 0)]
        return [f"macosx_{a}_{b}_{cpu_}" for a, b in versions for cpu_ in (arch, "universal2")]
    legacy = [f"manylinux{name}_{arch}" for name in ("1", "2010", "2014")]
    return [f"manylinux_2_{n}_{arch}" for n in range(5, 29)] + legacy


def minor(version: str) -> tuple[int, int]:
    major, minor_, *_ = (int(part) for part in version.split("."))
    return major, minor_


@pytest.fixture(scope="module")
def zips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    built = build_blender(tmp_path_factory.mktemp("dist"))
    return {target: next(z for z in built if z.stem.endswith(target)) for target in MACHINES}


def test_every_platform_is_checked() -> None:
    assert set(MACHINES) == set(BLENDER_TARGETS)


def releases_admitted(manifest: dict[str, object]) -> list[str]:
    """The Blender release lines ("5.1") from blender_version_min up to, not including,
    blender_version_max; each must have a known Python."""
    low, high = minor(str(manifest["blender_version_min"])), manifest["blender_version_max"]
    assert str(high).endswith(".0"), "the maximum is exclusive: the first release not admitted"
    known = sorted(BLENDER_PYTHONS, key=minor)
    admitted = [v for v in known if low <= minor(v) < minor(str(high))]
    # No gap: the range starts at the first release line known and ends right after the last.
    assert admitted == known and minor(known[0]) == low, (admitted, known, low)
    last = minor(known[-1])
    assert minor(str(high)) == (last[0], last[1] + 1), high
    return admitted


@pytest.mark.parametrize("target", list(MACHINES))
def test_each_python_the_manifest_admits_resolves_offline_from_the_zip(
    target: str, zips: dict[str, Path], tmp_path: Path
) -> None:
    system, arch = MACHINES[target]
    platforms = [arg for tag in platform_tags(system, arch) for arg in ("--platform", tag)]
    with zipfile.ZipFile(zips[target]) as zf:
        manifest = tomllib.loads(zf.read("blender_manifest.toml").decode())
        zf.extractall(tmp_path / "zip", [n for n in zf.namelist() if n.startswith("wheels/")])
    assert manifest["platforms"] == [target]
    validate = next(SITE.glob("bpy/*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    proc = subprocess.run([sys.executable, str(validate), "validate", str(zips[target])],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "Success" in proc.stdout, proc.stdout + proc.stderr
    pythons = sorted({BLENDER_PYTHONS[v] for v in releases_admitted(manifest)}, key=minor)
    assert pythons == ["3.11", "3.13"]  # 4.2 LTS to 5.0, then 5.1 to 5.3
    for python in pythons:
        into = tmp_path / f"py{python}"
        command = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                   "--no-index", "--find-links", str(tmp_path / "zip" / "wheels"),
                   "--only-binary=:all:", "--implementation", "cp", "--python-version", python,
                   *platforms, "--target", str(into),
                   *project_meta()["dependencies"]]
        proc = subprocess.run(command, capture_output=True, text=True)
        assert proc.returncode == 0, f"Python {python} on {target}:\n{proc.stderr[-2000:]}"
        (module,) = (into / "pydantic_core").glob("_pydantic_core.*[!i]")  # not the .pyi
        assert module.name == "_pydantic_core" + extension_suffix(python, system, arch)
        assert cpu(module) in (arch, "universal2"), (module.name, cpu(module))
