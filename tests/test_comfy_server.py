"""The test server itself is strict where ComfyUI is (PROTOCOL.md §1), checked over raw HTTP,
so the client tests above cannot pass against a lenient fake."""

from __future__ import annotations

import json
import uuid

import requests

from tests import workflows
from tests.imaging import gradient_png
from tests.servers.comfyui import ComfyTestServer


def post_prompt(server: ComfyTestServer, body: object) -> requests.Response:
    return requests.post(f"{server.url}/prompt", data=json.dumps(body), timeout=10)


def test_prompt_shapes(comfy_server: ComfyTestServer) -> None:
    assert requests.post(f"{comfy_server.url}/prompt", data="{nope", timeout=10).status_code == 500
    assert post_prompt(comfy_server, {}).json()["error"]["type"] == "no_prompt"
    bad_id = post_prompt(comfy_server, {"prompt": workflows.slow().graph, "prompt_id": "42"})
    assert bad_id.status_code == 400 and bad_id.json()["error"]["type"] == "invalid_prompt_id"
    no_out = post_prompt(comfy_server, {"prompt": {"1": {"class_type": "EmptyImage", "inputs": {
        "width": 8, "height": 8, "batch_size": 1, "color": 0}}}})
    assert no_out.json()["error"]["type"] == "prompt_no_outputs"
    graph = workflows.slow(blurs=1).graph
    graph["2"]["inputs"]["blur_radius"] = 99
    del graph["1"]["inputs"]["width"]
    rejected = post_prompt(comfy_server, {"prompt": graph}).json()
    assert rejected["error"]["type"] == "prompt_outputs_failed_validation"
    kinds = {nid: [e["type"] for e in v["errors"]] for nid, v in rejected["node_errors"].items()}
    assert kinds == {"1": ["required_input_missing"], "2": ["value_bigger_than_max"]}
    assert rejected["node_errors"]["2"]["errors"][0]["extra_info"]["input_name"] == "blur_radius"
    assert comfy_server.prompts == []


def test_upload_rules(comfy_server: ComfyTestServer) -> None:
    url = f"{comfy_server.url}/upload/image"
    png = gradient_png(8, 8)
    bogus = requests.post(url, files={"image": ("a.png", png)}, data={"type": "bogus"}, timeout=10)
    assert bogus.status_code == 500
    first = requests.post(url, files={"image": ("a.png", png)}, timeout=10).json()
    again = requests.post(url, files={"image": ("a.png", gradient_png(9, 9))}, timeout=10).json()
    forced = requests.post(url, files={"image": ("a.png", png)}, data={"overwrite": "true"},
                           timeout=10).json()
    assert (first["name"], again["name"], forced["name"]) == ("a.png", "a (1).png", "a.png")
    assert first == {"name": "a.png", "subfolder": "", "type": "input"}


def test_queue_interrupt_and_history_routes(comfy_server: ComfyTestServer) -> None:
    comfy_server.node_delay = 0.3
    ids = [str(uuid.uuid4()) for _ in range(2)]
    for pid in ids:
        assert post_prompt(comfy_server, {"prompt": workflows.slow(blurs=2, size=32).graph,
                                          "prompt_id": pid}).status_code == 200
    queue = requests.get(f"{comfy_server.url}/api/queue", timeout=10).json()
    assert [i[1] for i in queue["queue_running"] + queue["queue_pending"]] == ids
    requests.post(f"{comfy_server.url}/queue", json={"delete": [ids[1]]}, timeout=10)
    requests.post(f"{comfy_server.url}/interrupt", json={"prompt_id": "someone-else"}, timeout=10)
    assert requests.get(f"{comfy_server.url}/history/{ids[0]}", timeout=10).json() == {}
    assert comfy_server.wait_idle(10)
    entry = requests.get(f"{comfy_server.url}/history/{ids[0]}", timeout=10).json()[ids[0]]
    assert entry["status"]["status_str"] == "success"  # the foreign interrupt was ignored
    assert requests.get(f"{comfy_server.url}/history/{ids[1]}", timeout=10).json() == {}
    info = requests.get(f"{comfy_server.url}/object_info/ImageBlur", timeout=10).json()
    assert info["ImageBlur"]["input"]["required"]["blur_radius"][1]["max"] == 31
    assert requests.get(f"{comfy_server.url}/object_info/Nope", timeout=10).json() == {}
