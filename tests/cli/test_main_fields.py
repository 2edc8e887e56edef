"""`comfyrelay inputs --server` types the inputs; `run` refuses bad values before queueing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from comfyrelay.cli.main import main
from comfyrelay.comfyui.nodes import NodeDefs, node_defs

from tests.cli.test_main import comfyrelay
from tests.imaging import gradient_png
from tests.paths import WORKFLOWS
from tests.servers.comfy_nodes import SCHEMAS
from tests.servers.comfyui import ComfyTestServer

SD15 = WORKFLOWS / "sd15_img2img_api.json"
NOWHERE = "http://127.0.0.1:9"


def scale_workflow(tmp_path: Path) -> Path:
    """Nodes the test server runs: LoadImage → ImageScale → SaveImage."""
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
        "2": {"class_type": "ImageScale", "_meta": {"title": "Scale"},
              "inputs": {"image": ["1", 0], "upscale_method": "bilinear", "width": 64,
                         "height": 48, "crop": "disabled"}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0],
                                                     "filename_prefix": "scaled"}},
    }
    path = tmp_path / "scale.json"
    path.write_text(json.dumps(graph))
    return path


def test_inputs_lists_the_test_servers_choices_and_ranges(
    comfy_server: ComfyTestServer, tmp_path: Path
) -> None:
    result = comfyrelay("inputs", scale_workflow(tmp_path), "--server", comfy_server.url,
                        "--json")
    rows = {row["key"]: row for row in json.loads(result.stdout)}
    assert "bilinear" in rows["2.upscale_method"]["choices"]
    assert (rows["2.width"]["min"], rows["2.width"]["max"]) == (0, 16384)
    assert rows["2.width"]["kind"] == "number" and rows["2.width"]["value"] == 64


def test_run_refuses_a_misspelt_choice_before_queueing(
    comfy_server: ComfyTestServer, tmp_path: Path
) -> None:
    image = tmp_path / "in.png"
    image.write_bytes(gradient_png())
    result = comfyrelay("run", scale_workflow(tmp_path), "--server", comfy_server.url,
                        "--image", image, "--set", "Scale.upscale_method=bilinar",
                        "--out", tmp_path / "out")
    assert result.returncode == 1
    assert "Scale.upscale_method = 'bilinar'" in result.stderr
    assert "closest: bilinear" in result.stderr
    assert comfy_server.prompts == []


@pytest.fixture
def sd15_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every server has the real ComfyUI's KSampler & co. (the test server runs no models)."""
    monkeypatch.setattr(node_defs, "get", lambda url, **kw: NodeDefs(SCHEMAS))
    monkeypatch.setenv("COMFYRELAY_CONFIG_DIR", str(tmp_path / "config"))


@pytest.mark.usefixtures("sd15_server")
def test_inputs_json_adds_choices_and_ranges_and_keeps_its_fields(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["inputs", str(SD15), "--server", NOWHERE, "--json"]) == 0
    rows = {row["key"]: row for row in json.loads(capsys.readouterr().out)}
    sampler = rows["3.sampler_name"]
    assert {"node_id", "node_title", "class_type", "name", "value", "kind"} <= set(sampler)
    assert "euler" in sampler["choices"] and sampler["tooltip"]
    assert (rows["3.steps"]["min"], rows["3.steps"]["max"]) == (1, 10000)
    assert rows["6.text"]["multiline"] is True and "choices" not in rows["6.text"]


@pytest.mark.usefixtures("sd15_server")
def test_run_set_eulr_fails_before_queueing_and_suggests_euler(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main(["run", str(SD15), "--server", NOWHERE, "--out", str(tmp_path),
                 "--set", "KSampler.sampler_name=eulr"])
    err = capsys.readouterr().err
    assert code == 1
    assert "KSampler.sampler_name = 'eulr' is not one of the server's samplers" in err
    assert "closest: euler" in err
    assert "Could not connect" not in err  # refused before anything was sent


def test_inputs_without_a_reachable_server_lists_plain_inputs() -> None:
    result = comfyrelay("inputs", SD15, "--server", NOWHERE)
    assert result.returncode == 0
    assert "without the server's types" in result.stderr
    assert result.stdout.startswith("3.seed") and "[" not in result.stdout
