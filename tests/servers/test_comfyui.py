"""The ComfyUI test server is strict where ComfyUI 0.3.64 is (docs/WIRE.md §1), checked over
raw HTTP and WebSocket only, so the client tests cannot pass against a lenient fake."""

from __future__ import annotations

import copy
import io
import json
import struct
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import websocket
from PIL import Image, ImageChops

from tests.hosted import wait_for
from tests.imaging import gradient_png
from tests.paths import WORKFLOWS
from tests.servers import ComfyTestServer

PNG = gradient_png(32, 24)
Frame = dict[str, Any] | bytes


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[ComfyTestServer]:
    with ComfyTestServer(tmp_path / "server") as server:
        yield server


class Client:
    """A raw WebSocket client that records every frame."""

    def __init__(
        self, server: ComfyTestServer, flags: bool = False, client_id: str | None = None
    ) -> None:
        self.id = client_id or uuid.uuid4().hex
        url = server.url.replace("http", "ws") + f"/ws?clientId={self.id}"
        self.ws = websocket.create_connection(url, timeout=5)
        self.first = self.text()
        if flags:
            msg = {"type": "feature_flags", "data": {"supports_preview_metadata": True}}
            self.ws.send(json.dumps(msg))
            self.flags = self.text()

    def recv(self) -> Frame:
        opcode, data = self.ws.recv_data()
        if opcode == websocket.ABNF.OPCODE_TEXT:
            return dict(json.loads(data))
        return bytes(data)

    def text(self) -> dict[str, Any]:
        frame = self.recv()
        assert isinstance(frame, dict), frame
        return frame

    def until_done(self, prompt_id: str) -> list[Frame]:
        frames: list[Frame] = []
        while True:
            frame = self.recv()
            frames.append(frame)
            done = {"node": None, "prompt_id": prompt_id}
            if isinstance(frame, dict) and frame == {"type": "executing", "data": done}:
                return frames

    def close(self) -> None:
        self.ws.close()


def kind(frame: Frame) -> str:
    if isinstance(frame, bytes):
        return f"bin:{struct.unpack('>I', frame[:4])[0]}" if len(frame) >= 4 else "bin:?"
    return str(frame["type"])


def kinds(frames: list[Frame]) -> list[str]:
    return [kind(f) for f in frames]


def of(frames: list[Frame], name: str) -> list[dict[str, Any]]:
    return [f["data"] for f in frames if isinstance(f, dict) and f["type"] == name]


def upload(server: ComfyTestServer, name: str, data: bytes, **fields: str) -> requests.Response:
    files = {"image": (name, data, "image/png")}
    return requests.post(f"{server.url}/upload/image", files=files, data=fields, timeout=10)


def post(server: ComfyTestServer, graph: Any, client: Client | None = None, **extra: Any) -> Any:
    body = {"prompt": graph, "prompt_id": str(uuid.uuid4()), **extra}
    if client is not None:
        body["client_id"] = client.id
    return requests.post(f"{server.url}/prompt", json=body, timeout=10)


def history(server: ComfyTestServer, prompt_id: str) -> dict[str, Any]:
    return dict(requests.get(f"{server.url}/history/{prompt_id}", timeout=10).json())


def invert_graph(server: ComfyTestServer, name: str = "in.png") -> dict[str, Any]:
    assert upload(server, name, PNG).json()["name"] == name
    graph: dict[str, Any] = json.loads((WORKFLOWS / "invert_api.json").read_text())
    graph["1"]["inputs"]["image"] = name
    return graph


def blur_chain(blurs: int = 3, size: int = 32) -> dict[str, Any]:
    graph: dict[str, Any] = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": size, "height": size, "batch_size": 1, "color": 0x336699},
        }
    }
    for n in range(2, blurs + 2):
        graph[str(n)] = {
            "class_type": "ImageBlur",
            "inputs": {"image": [str(n - 1), 0], "blur_radius": 3, "sigma": 1.0},
        }
    graph["99"] = {"class_type": "PreviewImage", "inputs": {"images": [str(blurs + 1), 0]}}
    return graph


# ---- HTTP routes ----


def test_info_routes_and_api_prefix(srv: ComfyTestServer) -> None:
    stats = requests.get(f"{srv.url}/api/system_stats", timeout=10).json()
    assert stats["system"]["comfyui_version"] == "0.3.64-test" and stats["devices"]
    features = requests.get(f"{srv.url}/features", timeout=10).json()
    assert features == {"supports_preview_metadata": True, "max_upload_size": 100 * 2**20}
    upload(srv, "listed.png", PNG)
    info = requests.get(f"{srv.url}/api/object_info/LoadImage", timeout=10).json()
    assert info["LoadImage"]["input"]["required"]["image"] == [
        ["listed.png"],
        {"image_upload": True},
    ]
    blur = requests.get(f"{srv.url}/object_info", timeout=10).json()["ImageBlur"]
    assert blur["input"]["required"]["blur_radius"][1]["max"] == 31 and not blur["output_node"]
    assert requests.get(f"{srv.url}/object_info/Nope", timeout=10).json() == {}
    assert requests.get(f"{srv.url}/prompt", timeout=10).json() == {
        "exec_info": {"queue_remaining": 0}
    }
    assert requests.get(f"{srv.url}/api/jobs", timeout=10).status_code == 404  # newer only
    assert requests.post(f"{srv.url}/free", json={"free_memory": True}, timeout=10).ok


def test_origin_check_and_front_door_token(srv: ComfyTestServer, tmp_path: Path) -> None:
    stats = f"{srv.url}/system_stats"
    assert (
        requests.get(stats, headers={"Origin": "http://evil.example"}, timeout=10).status_code
        == 403
    )
    assert (
        requests.get(stats, headers={"Origin": "http://localhost"}, timeout=10).status_code == 403
    )
    assert requests.get(stats, headers={"Origin": srv.url}, timeout=10).ok
    assert requests.get(stats, headers={"Origin": "null"}, timeout=10).ok
    ws_url = srv.url.replace("http", "ws") + "/ws"
    with pytest.raises(websocket.WebSocketBadStatusException, match="403"):
        websocket.create_connection(ws_url, origin="http://evil.example", timeout=5)
    with ComfyTestServer(tmp_path / "tok", token="s3cret") as guarded:
        assert requests.get(f"{guarded.url}/api/system_stats", timeout=10).status_code == 401
        bearer = {"Authorization": "Bearer s3cret"}
        assert requests.get(f"{guarded.url}/system_stats", headers=bearer, timeout=10).ok
        ws_url = guarded.url.replace("http", "ws") + "/ws"
        with pytest.raises(websocket.WebSocketBadStatusException, match="401"):
            websocket.create_connection(ws_url, timeout=5)
        ws = websocket.create_connection(ws_url, header=["Authorization: Bearer s3cret"], timeout=5)
        assert json.loads(ws.recv())["type"] == "status"
        ws.close()


def test_upload_naming_limits_and_folders(srv: ComfyTestServer, tmp_path: Path) -> None:
    other = gradient_png(9, 9)
    names = [upload(srv, "a.png", data).json()["name"] for data in (PNG, other, PNG, other)]
    assert names == ["a.png", "a (1).png", "a.png", "a (1).png"]
    assert upload(srv, "a.png", gradient_png(5, 5)).json()["name"] == "a (2).png"
    assert upload(srv, "a.png", other, overwrite="true").json()["name"] == "a.png"
    assert (srv.input_dir / "a.png").read_bytes() == other
    assert upload(srv, "x.png", PNG, type="bogus").status_code == 500
    assert upload(srv, "x.png", PNG, type="temp").json() == {
        "name": "x.png",
        "subfolder": "",
        "type": "temp",
    }
    assert upload(srv, "x.png", PNG, subfolder="../..").status_code == 400
    assert upload(srv, "x.png", PNG, subfolder="sub").json()["subfolder"] == "sub"
    assert (srv.input_dir / "sub" / "x.png").is_file()
    no_file = requests.post(f"{srv.url}/upload/image", data={"x": "1"}, timeout=10)
    assert no_file.status_code == 400
    with ComfyTestServer(tmp_path / "small", max_upload_size=4096) as small:
        assert upload(small, "big.png", b"x" * 20000).status_code == 413
        assert not (small.input_dir / "big.png").exists()


def test_view_path_rules(srv: ComfyTestServer) -> None:
    upload(srv, "v.png", PNG)
    upload(srv, "w.png", PNG, subfolder="deep")

    def get(**params: str) -> requests.Response:
        return requests.get(f"{srv.url}/view", params=params, timeout=10)

    ok = get(filename="v.png", type="input")
    assert ok.content == PNG and ok.headers["Content-Length"] == str(len(PNG))
    assert ok.headers["Content-Type"] == "image/png"
    assert ok.headers["Content-Disposition"] == 'filename="v.png"'
    assert get(filename="w.png", subfolder="deep", type="input").content == PNG
    assert get(filename="v.png [input]").content == PNG  # annotated name, no type
    assert get(filename="../v.png", type="input").status_code == 400
    assert get(filename="a..b.png", type="input").status_code == 400
    assert get(filename="/etc/passwd", type="input").status_code == 400
    assert get(filename="v.png", subfolder="../..", type="input").status_code == 403
    assert get(filename="v.png", type="bogus").status_code == 400
    assert get(filename="gone.png", type="input").status_code == 404
    assert get(type="input").status_code == 404
    jpeg = get(filename="v.png", type="input", preview="jpeg;50")
    assert jpeg.headers["Content-Type"] == "image/jpeg" and jpeg.content[:3] == b"\xff\xd8\xff"


# ---- POST /prompt validation ----


def test_prompt_rejections_have_comfyui_shapes(srv: ComfyTestServer) -> None:
    url = f"{srv.url}/prompt"
    assert requests.post(url, data="{nope", timeout=10).status_code == 500
    no_prompt = requests.post(url, json={"client_id": "x"}, timeout=10)
    assert no_prompt.status_code == 400
    assert no_prompt.json() == {
        "error": {
            "type": "no_prompt",
            "message": "No prompt provided",
            "details": "No prompt provided",
            "extra_info": {},
        },
        "node_errors": {},
    }
    graph = invert_graph(srv)
    bad_id = requests.post(url, json={"prompt": graph, "prompt_id": "42"}, timeout=10)
    assert bad_id.status_code == 400 and bad_id.json()["error"]["type"] == "invalid_prompt_id"
    unknown = copy.deepcopy(graph)
    unknown["2"]["class_type"] = "NoSuchNode"
    assert post(srv, unknown).json()["error"] == {
        "type": "invalid_prompt",
        "message": "Cannot execute because node NoSuchNode does not exist.",
        "details": "Node ID '#2'",
        "extra_info": {},
    }
    no_out = post(srv, {"1": graph["1"], "2": graph["2"]})
    assert no_out.status_code == 400 and no_out.json()["error"]["type"] == "prompt_no_outputs"
    assert post(srv, {}).json()["error"]["type"] == "prompt_no_outputs"
    assert srv.prompts == []


def test_node_errors_name_node_input_and_outputs(srv: ComfyTestServer) -> None:
    graph = invert_graph(srv)
    missing = copy.deepcopy(graph)
    del missing["2"]["inputs"]["image"]
    body = post(srv, missing).json()
    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    assert body["node_errors"] == {
        "2": {
            "errors": [
                {
                    "type": "required_input_missing",
                    "message": "Required input is missing",
                    "details": "image",
                    "extra_info": {"input_name": "image"},
                }
            ],
            "dependent_outputs": ["3"],
            "class_type": "ImageInvert",
        }
    }
    no_file = copy.deepcopy(graph)
    no_file["1"]["inputs"]["image"] = "nope.png"
    error = post(srv, no_file).json()["node_errors"]["1"]["errors"][0]
    assert error["type"] == "custom_validation_failed"
    assert error["details"] == "image - Invalid image file: nope.png"
    dangling = copy.deepcopy(graph)
    dangling["2"]["inputs"]["image"] = ["99", 0]
    error = post(srv, dangling).json()["node_errors"]["2"]["errors"][0]
    assert error["type"] == "exception_during_inner_validation"
    assert error["extra_info"]["exception_type"] == "KeyError"
    assert error["extra_info"]["input_name"] == "images"  # the consumer's input, as ComfyUI
    short_link = copy.deepcopy(graph)
    short_link["2"]["inputs"]["image"] = ["1"]
    assert post(srv, short_link).json()["node_errors"]["2"]["errors"][0]["type"] == (
        "bad_linked_input"
    )
    wrong_type = copy.deepcopy(graph)
    wrong_type["2"]["inputs"]["image"] = ["1", 1]  # LoadImage's MASK into an IMAGE input
    error = post(srv, wrong_type).json()["node_errors"]["2"]["errors"][0]
    assert error["type"] == "return_type_mismatch"
    assert error["details"] == "image, received_type(MASK) mismatch input_type(IMAGE)"
    assert srv.prompts == []


def test_literal_checks_and_conversion(srv: ComfyTestServer) -> None:
    graph = blur_chain(blurs=1)
    graph["2"]["inputs"]["blur_radius"] = 99
    graph["1"]["inputs"]["width"] = "abc"
    graph["2"]["inputs"]["sigma"] = "0.01"
    errors = post(srv, graph).json()["node_errors"]
    assert errors["2"]["errors"][0] == {
        "type": "value_bigger_than_max",
        "message": "Value 99 bigger than max of 31",
        "details": "blur_radius",
        "extra_info": {
            "input_name": "blur_radius",
            "input_config": ["INT", {"default": 1, "min": 1, "max": 31, "step": 1}],
            "received_value": 99,
        },
    }
    assert errors["2"]["errors"][1]["type"] == "value_smaller_than_min"  # "0.01" converted
    assert errors["1"]["errors"][0]["type"] == "invalid_input_type"
    scale = {
        "1": blur_chain()["1"],
        "2": {
            "class_type": "ImageScale",
            "inputs": {
                "image": ["1", 0],
                "upscale_method": "magic",
                "width": "16",  # strings convert, as ComfyUI's int() does
                "height": 8.9,
                "crop": "disabled",
            },
        },
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
    }
    error = post(srv, scale).json()["node_errors"]["2"]["errors"][0]
    assert error["type"] == "value_not_in_list"
    assert error["extra_info"]["received_value"] == "magic"
    scale["2"]["inputs"]["upscale_method"] = "bilinear"
    accepted = post(srv, scale)
    assert accepted.status_code == 200
    assert srv.prompts[-1]["prompt"]["2"]["inputs"]["width"] == 16
    assert srv.prompts[-1]["prompt"]["2"]["inputs"]["height"] == 8


def test_partly_invalid_prompt_runs_the_good_outputs(srv: ComfyTestServer) -> None:
    graph = invert_graph(srv)
    graph["5"] = {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": "x"}}
    graph["6"] = {"class_type": "ImageInvert", "inputs": {}}
    ws = Client(srv)
    accepted = post(srv, graph, ws)
    body = accepted.json()
    assert accepted.status_code == 200 and body["node_errors"]["6"]["dependent_outputs"] == ["5"]
    ws.until_done(body["prompt_id"])
    entry = history(srv, body["prompt_id"])[body["prompt_id"]]
    assert entry["prompt"][4] == ["3"] and list(entry["outputs"]) == ["3"]
    ws.close()


# ---- runs and their frames ----


def test_normal_run_frames_history_and_pixels(srv: ComfyTestServer) -> None:
    srv.float32_pixels = False  # exact 255 - v, so the pixel check below is exact
    graph = invert_graph(srv)
    ws = Client(srv)
    assert ws.first == {
        "type": "status",
        "data": {"status": {"exec_info": {"queue_remaining": 0}}, "sid": ws.id},
    }
    accepted = post(srv, graph, ws).json()
    pid = accepted["prompt_id"]
    assert accepted == {"prompt_id": pid, "number": 0, "node_errors": {}}
    frames = ws.until_done(pid)
    assert history(srv, pid)  # written before executing{node: null}
    per_node = ["progress_state", "executing", "bin:1", "progress_state"]
    assert kinds(frames) == [
        "status",
        "status",
        "execution_start",
        "execution_cached",
        *per_node,
        *per_node,
        *per_node[:3],
        "executed",
        "progress_state",
        "execution_success",
        "status",
        "executing",
    ]
    assert [f["node"] for f in of(frames, "executing")] == ["1", "2", "3", None]
    assert of(frames, "execution_cached")[0]["nodes"] == []
    last_state = of(frames, "progress_state")[-1]["nodes"]
    assert {n: s["state"] for n, s in last_state.items()} == {
        "1": "finished",
        "2": "finished",
        "3": "finished",
    }
    image = of(frames, "executed")[0]["output"]["images"][0]
    assert image == {"filename": "inverted_00001_.png", "subfolder": "", "type": "output"}
    entry = history(srv, pid)[pid]
    assert entry["prompt"][:2] == [0, pid] and entry["prompt"][3] == {"client_id": ws.id}
    assert entry["outputs"] == {"3": {"images": [image]}}
    assert entry["status"]["status_str"] == "success" and entry["status"]["completed"]
    assert [m[0] for m in entry["status"]["messages"]] == [
        "execution_start",
        "execution_cached",
        "execution_success",
    ]
    result = requests.get(f"{srv.url}/view", params=image, timeout=10).content
    source = Image.open(io.BytesIO(PNG)).convert("RGB")
    inverted = Image.open(io.BytesIO(result)).convert("RGB")
    assert ImageChops.difference(ImageChops.invert(source), inverted).getbbox() is None
    ws.close()


def test_float32_invert_rounds_like_comfyui(srv: ComfyTestServer) -> None:
    assert srv.float32_pixels  # the default, like a real server
    levels = Image.new("RGB", (256, 1))
    levels.putdata([(v, v, v) for v in range(256)])
    buf = io.BytesIO()
    levels.save(buf, "PNG")
    assert upload(srv, "levels.png", buf.getvalue()).ok
    graph = invert_graph(srv, "in.png")
    graph["1"]["inputs"]["image"] = "levels.png"
    pid = post(srv, graph).json()["prompt_id"]
    assert srv.wait_idle(5)
    image = history(srv, pid)[pid]["outputs"]["3"]["images"][0]
    result = requests.get(f"{srv.url}/view", params=image, timeout=10).content
    red = Image.open(io.BytesIO(result)).convert("RGB").getchannel("R")
    values = [int(red.getpixel((x, 0))) for x in range(256)]  # type: ignore[arg-type]
    assert values[85] == 169 and values[0] == 255 and values[255] == 0  # as seen on 0.3.64
    assert sum(out != 255 - v for v, out in enumerate(values)) == 159
    assert all(255 - v - out in (0, 1) for v, out in enumerate(values))


def test_cached_rerun_sends_no_executing_frames(srv: ComfyTestServer) -> None:
    graph = invert_graph(srv)
    ws = Client(srv)
    ws.until_done(post(srv, graph, ws).json()["prompt_id"])
    pid = post(srv, graph, ws).json()["prompt_id"]
    frames = ws.until_done(pid)
    assert kinds(frames) == [
        "status",
        "status",
        "execution_start",
        "execution_cached",
        "executed",
        "progress_state",
        "execution_success",
        "status",
        "executing",
    ]
    assert of(frames, "execution_cached")[0]["nodes"] == ["1", "2", "3"]
    assert of(frames, "executed")[0]["output"]["images"][0]["filename"] == "inverted_00001_.png"
    assert history(srv, pid)[pid]["outputs"]["3"]["images"][0]["filename"] == "inverted_00001_.png"
    # New bytes under the same name: LoadImage's IS_CHANGED hash re-runs the graph.
    upload(srv, "in.png", gradient_png(8, 8), overwrite="true")
    frames = ws.until_done(post(srv, graph, ws).json()["prompt_id"])
    assert of(frames, "execution_cached")[0]["nodes"] == []
    assert of(frames, "executed")[0]["output"]["images"][0]["filename"] == "inverted_00002_.png"
    ws.close()


def test_error_run(srv: ComfyTestServer) -> None:
    graph = invert_graph(srv)
    graph["4"] = {"class_type": "ImageToMask", "inputs": {"image": ["1", 0], "channel": "alpha"}}
    graph["5"] = {"class_type": "MaskToImage", "inputs": {"mask": ["4", 0]}}
    graph["3"]["inputs"]["images"] = ["5", 0]
    del graph["2"]
    ws = Client(srv)
    pid = post(srv, graph, ws).json()["prompt_id"]
    frames = ws.until_done(pid)
    assert "execution_success" not in kinds(frames) and "executed" not in kinds(frames)
    assert kinds(frames)[-3:] == ["execution_error", "status", "executing"]
    error = of(frames, "execution_error")[0]
    assert error["node_id"] == "4" and error["node_type"] == "ImageToMask"
    assert error["executed"] == ["1"] and error["exception_type"] == "IndexError"
    assert error["exception_message"] == "index 3 is out of bounds for dimension 3 with size 3\n"
    assert error["traceback"] and list(error["current_inputs"]) == ["image", "channel"]
    assert {"prompt_id", "current_outputs", "timestamp"} <= set(error)
    status = history(srv, pid)[pid]["status"]
    assert status["status_str"] == "error" and not status["completed"]
    assert status["messages"][-1][0] == "execution_error"
    ws.close()


def test_queue_delete_and_targeted_interrupt(srv: ComfyTestServer) -> None:
    srv.node_delay = 0.2
    ws = Client(srv)
    first = post(srv, blur_chain(blurs=4), ws).json()["prompt_id"]
    second = post(srv, blur_chain(blurs=2, size=16), ws).json()["prompt_id"]
    queue = requests.get(f"{srv.url}/api/queue", timeout=10).json()
    assert [i[1] for i in queue["queue_running"] + queue["queue_pending"]] == [first, second]
    assert len(queue["queue_pending"][0]) == 5
    deleted = requests.post(f"{srv.url}/queue", json={"delete": [second]}, timeout=10)
    assert deleted.status_code == 200 and deleted.content == b""
    assert history(srv, first) == {}  # running: nothing yet
    requests.post(f"{srv.url}/interrupt", json={"prompt_id": second}, timeout=10)  # not running
    frames = [ws.recv()]
    while kind(frames[-1]) != "progress":  # the first progress tick: a checkpoint is near
        frames.append(ws.recv())
    requests.post(f"{srv.url}/interrupt", json={"prompt_id": first}, timeout=10)
    frames += ws.until_done(first)
    assert "execution_success" not in kinds(frames)
    interrupted = of(frames, "execution_interrupted")[0]
    assert interrupted["prompt_id"] == first
    assert interrupted["node_id"] == of(frames, "executing")[-2]["node"]  # the running node
    assert history(srv, first)[first]["status"]["messages"][-1][0] == "execution_interrupted"
    assert srv.wait_idle(5) and history(srv, second) == {}


def test_foreign_interrupt_is_ignored(srv: ComfyTestServer) -> None:
    srv.node_delay = 0.1
    ws = Client(srv)
    pid = post(srv, blur_chain(blurs=2), ws).json()["prompt_id"]
    requests.post(f"{srv.url}/interrupt", json={"prompt_id": str(uuid.uuid4())}, timeout=10)
    assert "execution_success" in kinds(ws.until_done(pid))
    ws.close()


def test_events_only_reach_the_prompts_client(srv: ComfyTestServer) -> None:
    mine, other = Client(srv), Client(srv)
    pid = post(srv, blur_chain(blurs=1), mine).json()["prompt_id"]
    mine.until_done(pid)
    anonymous = post(srv, blur_chain(blurs=1, size=20)).json()["prompt_id"]
    assert srv.wait_idle(5) and history(srv, anonymous)
    other.ws.settimeout(0.5)
    seen = []
    with pytest.raises(websocket.WebSocketTimeoutException):
        while True:
            seen.append(kind(other.recv()))
    # Without a client_id only broadcasts reach anyone: status, progress_state, previews.
    assert set(seen) <= {"status", "progress_state", "bin:1"}
    assert seen.count("progress_state") >= 4 and seen.count("bin:1") == 3  # the anonymous run
    mine.close()
    other.close()


def test_negotiated_previews_text_frames_and_text_output(srv: ComfyTestServer) -> None:
    upload(srv, "s.png", PNG)
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "s.png"}},
        "2": {"class_type": "GetImageSize", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "PreviewAny", "inputs": {"source": ["2", 0]}},
    }
    ws = Client(srv, flags=True)
    assert ws.flags == {
        "type": "feature_flags",
        "data": {"supports_preview_metadata": True, "max_upload_size": 100 * 2**20},
    }
    pid = post(srv, graph, ws).json()["prompt_id"]
    frames = ws.until_done(pid)
    binary = [f for f in frames if isinstance(f, bytes)]
    assert {kind(f) for f in binary} == {"bin:3", "bin:4"}
    text = next(f for f in binary if kind(f) == "bin:3")
    (length,) = struct.unpack(">I", text[4:8])
    assert text[8 : 8 + length] == b"2"
    assert text[8 + length :] == b"width: 32, height: 24\n batch size: 1"
    preview = next(f for f in binary if kind(f) == "bin:4")
    (length,) = struct.unpack(">I", preview[4:8])
    meta = json.loads(preview[8 : 8 + length])
    assert meta["prompt_id"] == pid and meta["image_type"] == "image/png"
    assert preview[8 + length :][:4] == b"\x89PNG"
    assert history(srv, pid)[pid]["outputs"] == {"3": {"text": ["32"]}}
    ws.close()


def test_reconnect_mid_run_gets_the_node_without_prompt_id(srv: ComfyTestServer) -> None:
    srv.node_delay = 0.2
    ws = Client(srv)
    pid = post(srv, blur_chain(blurs=3), ws).json()["prompt_id"]
    while kind(ws.recv()) != "executing":
        pass
    ws.close()
    again = Client(srv, client_id=ws.id)
    assert again.first["data"]["status"]["exec_info"]["queue_remaining"] == 1
    resent = again.text()
    assert resent["type"] == "executing" and set(resent["data"]) == {"node"}
    assert "execution_success" in kinds(again.until_done(pid))
    again.close()


def test_history_listing_and_numbers(srv: ComfyTestServer) -> None:
    ids = [post(srv, blur_chain(blurs=1, size=8 + n)).json()["prompt_id"] for n in range(3)]
    assert srv.wait_idle(5)
    listing = requests.get(f"{srv.url}/history", params={"max_items": 2}, timeout=10).json()
    assert list(listing) == ids[1:]
    assert [listing[i]["prompt"][0] for i in ids[1:]] == [1, 2]
    assert len(requests.get(f"{srv.url}/history", timeout=10).json()) == 3


def test_test_save_files_reports_several_kinds(srv: ComfyTestServer) -> None:
    graph = blur_chain(blurs=1)
    graph["99"] = {
        "class_type": "TestSaveFiles",
        "inputs": {"images": ["2", 0], "filename_prefix": "sub/files"},
    }
    pid = post(srv, graph).json()["prompt_id"]
    assert srv.wait_idle(5)
    outputs = history(srv, pid)[pid]["outputs"]["99"]
    assert set(outputs) == {"images", "gifs", "audio"}
    for item in (*outputs["images"], *outputs["gifs"], *outputs["audio"]):
        assert requests.get(f"{srv.url}/view", params=item, timeout=10).ok


# ---- faults ----


def test_dropped_socket_still_writes_history(srv: ComfyTestServer) -> None:
    srv.faults.drop_ws_after_frames = 3
    ws = Client(srv)
    pid = post(srv, invert_graph(srv), ws).json()["prompt_id"]
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
        for _ in range(50):
            ws.recv()
    assert srv.wait_idle(5) and history(srv, pid)[pid]["status"]["status_str"] == "success"


def test_silent_socket(srv: ComfyTestServer) -> None:
    srv.faults.silent_ws = True
    ws = Client(srv)
    assert kind(ws.first) == "status"
    pid = post(srv, invert_graph(srv), ws).json()["prompt_id"]
    assert srv.wait_idle(5) and history(srv, pid)
    ws.ws.settimeout(0.3)
    with pytest.raises(websocket.WebSocketTimeoutException):
        ws.recv()


def test_injected_http_errors_with_a_count(srv: ComfyTestServer) -> None:
    srv.faults.http_errors["/history"] = 502
    srv.faults.http_error_count["/history"] = 2
    codes = [requests.get(f"{srv.url}/api/history/x", timeout=10).status_code for _ in range(3)]
    assert codes == [502, 502, 200]
    srv.faults.http_errors["/upload/image"] = 500
    assert upload(srv, "a.png", PNG).status_code == 500
    assert not (srv.input_dir / "a.png").exists()


def test_truncated_download(srv: ComfyTestServer) -> None:
    upload(srv, "t.png", PNG)
    srv.faults.truncate_downloads = True
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(f"{srv.url}/view", params={"filename": "t.png", "type": "input"}, timeout=10)


@pytest.mark.parametrize("hostile", ["../../evil.png", "/etc/passwd", "a\x00b.png", "y" * 300])
def test_hostile_filename_is_reported_and_served(srv: ComfyTestServer, hostile: str) -> None:
    srv.faults.hostile_filename = hostile
    ws = Client(srv)
    pid = post(srv, invert_graph(srv), ws).json()["prompt_id"]
    shown = of(ws.until_done(pid), "executed")[0]["output"]["images"][0]
    assert shown["filename"] == hostile
    assert history(srv, pid)[pid]["outputs"]["3"]["images"][0] == shown
    served = requests.get(f"{srv.url}/view", params=shown, timeout=10)
    assert served.ok and served.content[:4] == b"\x89PNG"
    ws.close()


def test_hostile_subfolder_is_reported_and_served(srv: ComfyTestServer) -> None:
    srv.faults.hostile_subfolder = "../../../etc"
    pid = post(srv, invert_graph(srv)).json()["prompt_id"]
    assert srv.wait_idle(5)
    shown = history(srv, pid)[pid]["outputs"]["3"]["images"][0]
    assert shown == {
        "filename": "inverted_00001_.png",
        "subfolder": "../../../etc",
        "type": "output",
    }
    assert requests.get(f"{srv.url}/view", params=shown, timeout=10).content[:4] == b"\x89PNG"


def test_unknown_messages_are_interleaved(srv: ComfyTestServer) -> None:
    srv.faults.unknown_ws_messages = True
    ws = Client(srv)
    found = set(kinds(ws.until_done(post(srv, invert_graph(srv), ws).json()["prompt_id"])))
    assert {"crystools.monitor", "bin:2", "bin:99", "bin:?", "execution_success"} <= found


def test_restart_forgets_everything_on_the_same_port(srv: ComfyTestServer) -> None:
    url, graph = srv.url, invert_graph(srv)
    pid = post(srv, graph).json()["prompt_id"]
    assert srv.wait_idle(5) and history(srv, pid)
    srv.node_delay = 0.3
    ws = Client(srv)
    running = post(srv, blur_chain(), ws).json()["prompt_id"]
    wait_for(lambda: srv.running is not None)
    srv.restart()
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
        for _ in range(50):
            ws.recv()
    assert srv.url == url and history(srv, pid) == {} and history(srv, running) == {}
    assert requests.get(f"{url}/queue", timeout=10).json() == {
        "queue_running": [],
        "queue_pending": [],
    }
    srv.node_delay = 0
    again = post(srv, graph).json()
    assert again["number"] == 0  # a new process counts from zero
    assert srv.wait_idle(5) and history(srv, again["prompt_id"])
    assert len(srv.prompts) == 3  # what was ever accepted survives, for the tests


def test_restart_during_run(srv: ComfyTestServer) -> None:
    srv.faults.restart_during_run = True
    ws = Client(srv)
    pid = post(srv, invert_graph(srv), ws).json()["prompt_id"]
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
        for _ in range(50):
            ws.recv()
    assert srv.wait_idle(5) and history(srv, pid) == {}
    assert not srv.faults.restart_during_run  # one-shot


# ---- version profiles: "old" is 0.3.44, "new" has the job routes ----


@pytest.fixture
def old(tmp_path: Path) -> Iterator[ComfyTestServer]:
    with ComfyTestServer(tmp_path / "old", profile="old") as server:
        yield server


@pytest.fixture
def new(tmp_path: Path) -> Iterator[ComfyTestServer]:
    with ComfyTestServer(tmp_path / "new", profile="new") as server:
        yield server


def test_old_server_picks_ids_and_has_no_flags(old: ComfyTestServer) -> None:
    assert requests.get(f"{old.url}/features", timeout=10).status_code == 404
    assert requests.get(f"{old.url}/api/system_stats", timeout=10).json()["system"][
        "comfyui_version"] == "0.3.44-test"
    ws = Client(old, flags=False)
    ws.ws.send(json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}}))
    ours = str(uuid.uuid4())
    answer = post(old, blur_chain(blurs=1), ws, prompt_id=ours).json()
    assert answer["prompt_id"] != ours  # its own id, the body's ignored
    frames = ws.until_done(answer["prompt_id"])
    assert "feature_flags" not in kinds(frames) and "progress_state" not in kinds(frames)
    assert "bin:1" in kinds(frames) and "bin:4" not in kinds(frames)  # no metadata previews
    ws.close()


def test_old_server_interrupt_stops_whatever_runs(old: ComfyTestServer) -> None:
    old.node_delay = 0.2
    ws = Client(old)
    pid = post(old, blur_chain(blurs=3), ws).json()["prompt_id"]
    while kind(ws.recv()) != "progress":
        pass
    requests.post(f"{old.url}/interrupt", json={"prompt_id": str(uuid.uuid4())}, timeout=10)
    assert "execution_interrupted" in kinds(ws.until_done(pid))
    ws.close()


def test_partner_keys_leave_history_as_each_version_does(tmp_path: Path) -> None:
    """0.3.44 keeps extra_data's keys everywhere, 0.3.64 drops them from the history entry,
    the newest server keeps them out of /queue and /history from the start."""
    kept = {}
    for profile in ("old", "current", "new"):
        with ComfyTestServer(tmp_path / profile, profile=profile) as server:
            server.node_delay = 0.2
            extra = {"api_key_comfy_org": "k"}
            pid = post(server, blur_chain(blurs=1), extra_data=extra).json()["prompt_id"]
            running = requests.get(f"{server.url}/queue", timeout=10).json()["queue_running"]
            assert server.wait_idle(5)
            entry = history(server, pid)[pid]
            kept[profile] = ("api_key_comfy_org" in running[0][3],
                             "api_key_comfy_org" in entry["prompt"][3])
    assert kept == {"old": (True, True), "current": (True, False), "new": (False, False)}


def test_new_server_job_routes(new: ComfyTestServer) -> None:
    new.node_delay = 0.3
    ws = Client(new)
    running = post(new, blur_chain(blurs=3), ws).json()["prompt_id"]
    pending = post(new, blur_chain(blurs=1, size=16), ws).json()["prompt_id"]
    jobs = f"{new.url}/api/jobs"
    listed = requests.get(jobs, params={"limit": 1}, timeout=10).json()
    assert len(listed["jobs"]) == 1 and listed["pagination"]["total"] == 2
    assert requests.get(f"{jobs}/{running}", timeout=10).json()["status"] == "in_progress"
    assert requests.get(f"{jobs}/{pending}", timeout=10).json()["status"] == "pending"
    unknown = requests.get(f"{jobs}/{uuid.uuid4()}", timeout=10)
    assert unknown.status_code == 404 and unknown.json() == {"error": "Job not found"}
    assert requests.post(f"{jobs}/{pending}/cancel", timeout=10).json() == {"cancelled": True}
    assert requests.post(f"{jobs}/{running}/cancel", timeout=10).json() == {"cancelled": True}
    assert "execution_interrupted" in kinds(ws.until_done(running))
    assert new.wait_idle(5)
    assert requests.get(f"{jobs}/{running}", timeout=10).json()["status"] == "cancelled"
    assert requests.get(f"{jobs}/{pending}", timeout=10).status_code == 404  # dequeued
    again = requests.post(f"{jobs}/{running}/cancel", timeout=10).json()
    assert again == {"cancelled": False}  # ended: a no-op
    bad = post(new, blur_chain(), prompt_id="not-a-uuid")
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_prompt_id"
    ws.close()


def test_load_video_checks_its_file_input(srv: ComfyTestServer) -> None:
    graph = {"1": {"class_type": "LoadVideo", "inputs": {"file": "missing.mp4"}},
             "2": {"class_type": "SaveVideo", "inputs": {"video": ["1", 0],
                   "filename_prefix": "v", "format": "auto", "codec": "auto"}}}
    reply = post(srv, graph).json()
    (error,) = reply["node_errors"]["1"]["errors"]
    assert error["details"] == "file - Invalid video file: missing.mp4"
    assert error["extra_info"]["input_name"] == "file"


def test_load_image_reads_every_frame_of_an_animated_png_as_a_batch(tmp_path: Path) -> None:
    """As ComfyUI 0.3.64's LoadImage (ImageSequence): 3 frames, 3 images and 3 masks; a
    still PNG stays one image."""
    from tests.servers.comfy_nodes import Ctx, Folders, load_image

    folders = Folders(tmp_path)
    frames = [Image.new("RGBA", (8, 6), (n * 80, 0, 0, 255 - n * 100)) for n in range(3)]
    frames[0].save(folders.input / "anim.png", save_all=True, append_images=frames[1:],
                   duration=100, loop=0)
    images, masks = load_image(Ctx(folders, "1"), "anim.png").outputs
    assert [i.getpixel((0, 0)) for i in images] == [(0, 0, 0), (80, 0, 0), (160, 0, 0)]
    assert [m.getpixel((0, 0)) for m in masks] == [0, 100, 200]  # 1 - alpha
    still = Image.new("RGB", (8, 6), (1, 2, 3))
    still.save(folders.input / "still.png")
    images, masks = load_image(Ctx(folders, "1"), "still.png").outputs
    assert len(images) == len(masks) == 1 and images[0].getpixel((0, 0)) == (1, 2, 3)
