"""The workflow in the artist's hands, in the real Krita against the ComfyUI test server:
fields typed from its /object_info, values it would refuse stopped before anything is sent,
the app view kept across a restart, and the run history kept in the .kra and run again."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops

from tests.krita.conftest import RunKrita
from tests.paths import WORKFLOWS
from tests.servers.comfy_nodes import SCHEMAS
from tests.servers.comfyui import ComfyTestServer

W, H = 40, 30
IMG2IMG = WORKFLOWS / "sd15_img2img_api.json"
NOISE = WORKFLOWS / "noise_api.json"
CLOSED_PORT = "http://127.0.0.1:9"  # nothing listens: the server is "down"


@pytest.fixture
def config(tmp_path: Path) -> dict[str, str | None]:
    """ComfyRelay's own config folder (the app views), the same for every Krita started."""
    return {"COMFYRELAY_CONFIG_DIR": str(tmp_path / "comfyrelay-config"), "COMFYUI_TOKEN": None}


def samplers() -> list[str]:
    schema = SCHEMAS["KSampler"]["input"]["required"]
    return list(schema["sampler_name"][0])


def with_values(tmp_path: Path, source: Path, node: str, **values: Any) -> str:
    """A copy of a workflow with some of `node`'s inputs changed."""
    graph = json.loads(source.read_text())
    graph[node]["inputs"].update(values)
    path = tmp_path / source.name
    path.write_text(json.dumps(graph))
    return str(path)


def test_inputs_are_typed_from_the_servers_node_definitions(
    run_krita: RunKrita, server: ComfyTestServer, config: dict[str, str | None]
) -> None:
    settings = {"url": server.url, "workflow": str(IMG2IMG)}
    r = run_krita("typed_fields", script="workflow_checks", env=config, width=W, height=H,
                  settings=settings)
    assert r["typed"] and r["events"] == ["WorkflowOpened"], r["events"]
    f = r["fields"]
    sampler = f["3.sampler_name"]
    assert sampler["class"] == "ChoiceField" and sampler["choices"] == samplers()
    assert sampler["value"] == "dpmpp_2m" and sampler["problem"] is None
    assert "algorithm used when sampling" in sampler["tooltip"]  # the node's own tooltip
    assert f["3.scheduler"]["class"] == "ChoiceField" and "karras" in f["3.scheduler"]["choices"]
    steps = f["3.steps"]
    assert (steps["class"], steps["low"], steps["high"], steps["slider"]) == (
        "NumberField", 1, 10000, False)
    denoise = f["3.denoise"]
    assert (denoise["low"], denoise["high"], denoise["step"], denoise["slider"]) == (
        0.0, 1.0, 0.01, True)  # 100 steps: a slider beside the spin box
    assert f["3.cfg"]["step"] == pytest.approx(0.1) and not f["3.cfg"]["slider"]
    seed = f["3.seed"]
    assert seed["class"] == "SeedField" and seed["controls"] == ["fixed", "random", "increment"]
    assert f["6.text"]["class"] == "TextField"
    # The test server lists no checkpoint: the workflow's one is kept, flagged at once.
    ckpt = f["4.ckpt_name"]
    assert ckpt["choices"] == ["v1-5-pruned-emaonly.safetensors"] and ckpt["problem"]
    assert "border" in ckpt["style"] and "checkpoints" in ckpt["tooltip"]
    assert not r["note"]


def test_values_the_server_would_refuse_are_flagged_and_never_sent(
    run_krita: RunKrita, server: ComfyTestServer, config: dict[str, str | None],
    tmp_path: Path,
) -> None:
    workflow = with_values(tmp_path, IMG2IMG, "3", steps=0, sampler_name="eulr")
    settings = {"url": server.url, "workflow": workflow}
    r = run_krita("refused_values", script="workflow_checks", env=config, width=W, height=H,
                  settings=settings)
    assert r["typed"]
    before = r["before"]
    assert before["3.steps"]["value"] == 0  # shown as it is, not clamped to the minimum
    assert "below the minimum 1" in before["3.steps"]["problem"]
    assert "closest: euler" in before["3.sampler_name"]["problem"]
    assert "border" in before["3.sampler_name"]["style"]
    refused = r["refused"]
    status = refused["status"]  # the values named by their labels, in red
    assert status.startswith("3 inputs need attention: "), status  # and Checkpoint
    assert "Steps — " in status and "Sampler — " in status and "closest: euler" in status
    assert "color" in refused["style"]
    assert not refused["run_enabled"] and refused["run_tip"] == status  # why, on hover
    assert not refused["busy"] and refused["layers"] == ["Background"]
    assert server.prompts == [] and not list(server.input_dir.iterdir())  # nothing queued
    assert r["steps_after"]["problem"] is None and r["steps_after"]["style"] == ""
    assert r["status_after"].startswith("2 inputs need attention: Sampler — ")


def test_plain_fields_without_a_server_then_refresh_types_them(
    run_krita: RunKrita, server: ComfyTestServer, config: dict[str, str | None]
) -> None:
    settings = {"url": CLOSED_PORT, "workflow": str(IMG2IMG)}
    r = run_krita("plain_then_refresh", script="workflow_checks", env=config, width=W,
                  height=H, settings=settings, server=server.url)
    plain = r["plain"]
    assert plain["fields"]["3.sampler_name"]["class"] == "TextField"  # as before: free text
    assert plain["fields"]["3.sampler_name"]["problem"] is None  # nothing to judge by
    assert plain["note"] and plain["refresh_enabled"]
    assert r["typed"] and r["fields"]["3.sampler_name"]["class"] == "ChoiceField"
    assert not r["note"]


def test_the_app_view_comes_back_after_a_restart(
    run_krita: RunKrita, server: ComfyTestServer, config: dict[str, str | None]
) -> None:
    settings = {"url": server.url, "workflow": str(IMG2IMG)}
    app = [["6.text", "Prompt"], ["3.sampler_name", "Sampler"], ["3.steps", "Steps"]]
    r = run_krita("app_customize", script="workflow_checks", env=config, width=W, height=H,
                  settings=settings, app=app)
    assert r["labels"] == ["Prompt", "Sampler", "Steps"]
    saved = json.loads((Path(config["COMFYRELAY_CONFIG_DIR"] or "") / "apps.json").read_text())
    assert list(saved["apps"]) == [str(IMG2IMG.resolve())]

    again = run_krita("app_restored", script="workflow_checks", env=config, width=W, height=H,
                      settings=settings)  # a new Krita, a new docker
    assert again["typed"]
    assert again["labels"] == ["Prompt", "Sampler", "Steps"]
    assert again["keys"] == ["6.text", "3.sampler_name", "3.steps"]
    assert again["all_open"] is False  # the rest, folded away: its flagged field is counted
    assert again["toggle"] == f"All inputs ({again['others']}) · 1 flagged"
    assert again["sampler"]["class"] == "ChoiceField"  # typed in the app as anywhere


def history_in(kra: str) -> dict[str, Any]:
    with zipfile.ZipFile(kra) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith("/annotations/comfyrelay-history")]
        return dict(json.loads(zf.read(name)))


def test_history_survives_the_kra_and_run_again_gives_the_same_pixels(
    run_krita: RunKrita, server: ComfyTestServer, config: dict[str, str | None],
    tmp_path: Path,
) -> None:
    token = "tok-HISTORY-KRA"
    results = tmp_path / "results"
    settings = {"url": server.url, "token": token, "workflow": str(NOISE),
                "output_folder": str(results)}
    r = run_krita("history_run", script="workflow_checks", env=config, width=W, height=H,
                  settings=settings)
    assert r["finished"] and r["status"].startswith("Done"), r["status"]
    (run,) = r["history"]["runs"]
    seed = run["seed"]
    assert seed == r["seed_shown"] and seed != 1234  # random: the field shows the seed used
    assert run["workflow_path"] == str(NOISE) and run["bindings"]["values"]["2.strength"] == 0.5
    assert run["backend"] == "comfyui" and run["server_version"]
    first = Path(run["outputs"][0])
    assert first.parent == results and first.is_file()
    assert r["modified"] and r["layers"][0].endswith(f"seed {seed}")
    assert r["rows"][0].startswith("noise_api\n") and f"seed {seed}" in r["rows"][0]
    assert history_in(r["kra"])["runs"][0]["seed"] == seed  # in the file, not just in memory
    with zipfile.ZipFile(r["kra"]) as kra:
        assert all(token.encode() not in kra.read(name) for name in kra.namelist())

    again = run_krita("history_rerun", script="workflow_checks", env=config, width=W,
                      height=H, settings=settings, kra=r["kra"])
    assert again["listed"] and again["rows"] == r["rows"], again["rows"]
    assert "comfyrelay-history" in again["types"] and again["thumbs"]
    assert again["finished"] and again["status"].startswith("Done"), again["status"]
    runs = again["history"]["runs"]
    assert len(runs) == 2 and runs[1]["seed"] == seed and len(again["after"]) == 2
    assert again["ids"] == [runs[1]["id"], runs[0]["id"]]  # newest first
    second = Path(runs[1]["outputs"][0])
    assert second != first
    with Image.open(first) as a, Image.open(second) as b:  # same seed, same canvas: same file
        assert ImageChops.difference(a.convert("RGB"), b.convert("RGB")).getbbox() is None
    used = again["used"]
    assert used["3.filename_prefix"]["value"] == "noisy"
    assert used["2.strength"]["value"] == 0.5  # the run's, not the 0.9 typed before
    assert used["2.seed"]["value"] == seed and used["2.seed"]["control"] == "fixed"
    assert again["opened"] == [str(results)]
