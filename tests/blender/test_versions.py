"""The built extension in every Blender release line it admits, in real bpy: installed from
the zip the way Blender does, enabled, its preferences read, one job run against the ComfyUI
test server and the result imported (the releases: tests/blender/bpy_versions.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tests.blender.bpy_versions import ALL_BPY, RELEASES, python_for, site
from tests.blender.conftest import RunBlender, blender_runner, link_bpy_only, uploaded
from tests.imaging import inverted_rgba, within_one_level
from tests.paths import WORKFLOWS
from tests.pythons import MISSING
from tests.servers.comfyui import ComfyTestServer

INVERT = str(WORKFLOWS / "invert_api.json")
# What Blender prints when a property holds a value none of its enum items has.
RNA_ENUM_WARNING = "matches no enum"


@pytest.fixture(scope="module", params=ALL_BPY)
def release(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    version: str = request.param
    if python_for(version) is None:
        pytest.fail(MISSING.format(RELEASES[version]))
    if not (site(version) / "bpy").is_dir():
        pytest.fail(f"bpy {version} is not installed: `bash tests/run.sh` installs it")
    return version


@pytest.fixture
def run_in(release: str, extension_zip: Path, tmp_path: Path) -> RunBlender:
    bpy_path = link_bpy_only(tmp_path / "bpy-only", site(release))
    python = python_for(release)
    assert python is not None
    return blender_runner(extension_zip, bpy_path, tmp_path, python)


def test_installs_enables_and_reads_its_preferences_without_warnings(
    release: str, run_in: RunBlender
) -> None:
    r = run_in("install")
    assert r["bpy_version"].startswith(release), r["bpy_version"]  # the bpy we meant
    assert r["addon"] == "bl_ext.user_default.comfyrelay"
    assert all(r["classes"].values()), r["classes"]
    # Blender installed the pydantic-core of its own Python, not the others in the zip.
    tag = "".join(map(str, r["python"]))
    compiled = [n for n in r["compiled"] if n.endswith(".so")]
    assert compiled == [f"_pydantic_core.cpython-{tag}-x86_64-linux-gnu.so"], r["compiled"]
    assert ".".join(map(str, r["python"])) == RELEASES[release]
    assert r["prefs_values"]["icu_accelerator"] == "default"
    assert r["accelerator_sent"] is None  # ComfyICU's own choice
    assert RNA_ENUM_WARNING not in r["log"], r["log"][-3000:]


def test_runs_a_job_and_imports_the_result(
    release: str, run_in: RunBlender, server: ComfyTestServer
) -> None:
    r = run_in("invert", url=server.url, workflow=INVERT)
    assert r["run_error"] == "" and r["error"] == "", (r["run_error"], r["error"])
    assert r["status"].startswith("Done"), r["status"]
    (sent,) = uploaded(server)
    rgb = Image.open(sent).convert("RGB").tobytes()
    assert len(set(rgb)) > 10  # a real render went out
    assert within_one_level(bytes.fromhex(r["result"]), inverted_rgba(rgb))  # came back inverted
    assert RNA_ENUM_WARNING not in r["log"], r["log"][-3000:]
