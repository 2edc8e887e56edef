"""Broken or hostile workflow files, as a new user meets them (files from the web): each gives one
clear sentence and exit 1 from `convert`, `inputs` and `run`, in under 5 s and under 100 MB
resident, and the same sentence from the core function both hosts' workflow field uses."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from comfyrelay import HostSession, HostSettings, WorkflowOpened
from comfyrelay.comfyui.convert import MAX_DEPTH, MAX_NODES, server_converter
from comfyrelay.errors import WorkflowError
from comfyrelay.jobs.workflow import Workflow
from comfyrelay.jobs.workflow_file import MAX_TEXT
from comfyrelay.net.http import MAX_BODY

from tests.servers.comfyui import ComfyTestServer

SECONDS = 5.0
RESIDENT = 100 * 2**20


def node(node_id: int, kind: str, values: Any = None, **extra: Any) -> dict[str, Any]:
    return {"id": node_id, "type": kind, "mode": 0, "inputs": [], "outputs": [],
            "properties": {}, "widgets_values": values or [], **extra}  # fmt: skip


def subgraph(sid: str, nodes: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": sid, "name": sid, "nodes": nodes, "links": [], "inputs": [], "outputs": [],
            "version": 1, "state": {"lastNodeId": 100}}  # fmt: skip


def ui(nodes: list[dict[str, Any]], subgraphs: list[dict[str, Any]] | None = None,
       links: list[Any] | None = None) -> dict[str, Any]:  # fmt: skip
    return {"last_node_id": 100, "last_link_id": 10, "nodes": nodes, "links": links or [],
            "definitions": {"subgraphs": subgraphs or []}, "version": 0.4}  # fmt: skip


def chain(levels: int, fan_out: int = 1) -> dict[str, Any]:
    """s0 holds `fan_out` instances of s1, which holds as many of s2, ... down to an image."""
    subs = []
    for level in range(levels):
        inner = [node(i + 1, f"s{level + 1}") for i in range(fan_out)]
        subs.append(subgraph(f"s{level}", inner if level < levels - 1 else [node(1, "EmptyImage")]))
    return ui([node(1, "s0")], subs)


def png_with(kind: bytes, key: str, text_chunk: bytes) -> bytes:
    def chunk(name: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(name + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + name + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\0\0\0\0")
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(kind, key.encode() + text_chunk)
            + chunk(b"IDAT", pixels) + chunk(b"IEND", b""))  # fmt: skip


def bomb() -> bytes:
    """200 MB of spaces, compressed: about 200 KB."""
    stream = zlib.compressobj(9)
    block = b" " * 2**20
    return b"".join(stream.compress(block) for _ in range(200)) + stream.flush()


def loop_through_others() -> dict[str, Any]:
    """A holds B, B holds C, C holds A."""
    return ui([node(1, "A")], [
        subgraph("A", [node(1, "EmptyImage"), node(2, "B")]),
        subgraph("B", [node(3, "C")]),
        subgraph("C", [node(4, "A")]),
    ])  # fmt: skip


def link_to_missing_node() -> dict[str, Any]:
    """A Save Image whose input is linked from node 77, which the file lacks."""
    images = {"name": "images", "type": "IMAGE", "link": 1}
    return ui([node(2, "SaveImage", ["x"], inputs=[images])], links=[[1, 77, 0, 2, 0, "IMAGE"]])


def write(path: Path, data: bytes | str | dict[str, Any]) -> Path:
    if isinstance(data, dict):
        data = json.dumps(data)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


# name -> (the file, what the sentence must say)
CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "self_subgraph": (
        lambda d: write(d / "self.json", ui([node(1, "A")], [subgraph("A", [node(1, "A")])])),
        "Subgraph 'A' contains an instance of itself (",
    ),
    "through_others": (
        lambda d: write(d / "loop.json", loop_through_others()),
        "Subgraph 'A' contains an instance of itself through 'B', 'C' ('A' → 'B' → 'C' → 'A')",
    ),
    "nested_34_deep": (
        lambda d: write(d / "deep.json", chain(34)),
        f"nested 34 levels deep; ComfyRelay reads at most {MAX_DEPTH}",
    ),
    "expands_past_the_limit": (  # 14 levels, each holding two of the next: 16384 nodes
        lambda d: write(d / "wide.json", chain(14, fan_out=2)),
        f"expand to more than {MAX_NODES} nodes",
    ),
    "ztxt_bomb": (
        lambda d: write(d / "ztxt.png", png_with(b"zTXt", "workflow", b"\0\0" + bomb())),
        f"'workflow' metadata inflates to more than {MAX_TEXT // 2**20} MB",
    ),
    "itxt_bomb": (
        lambda d: write(d / "itxt.png", png_with(b"iTXt", "prompt", b"\0\1\0\0\0" + bomb())),
        f"'prompt' metadata inflates to more than {MAX_TEXT // 2**20} MB",
    ),
    "malformed_json": (
        lambda d: write(d / "cut.json", '{"nodes": [{"id": 1, "type": "Empty'),
        "cut.json is not a JSON workflow (Unterminated string",
    ),
    "json_nested_too_deep": (
        lambda d: write(d / "brackets.json", "[" * 100_000 + "]" * 100_000),
        "brackets.json holds JSON nested too deeply",
    ),
    "link_to_a_missing_node": (
        lambda d: write(d / "missing.json", link_to_missing_node()),
        "Node 2 (Save Image) input 'images' is linked to a missing node",
    ),
    "widget_of_the_wrong_type": (
        lambda d: write(d / "typed.json", ui([node(1, "EmptyImage", [{"w": 1}, 24, 1, 0])])),
        "Node 1 (EmptyImage) has {\"w\": 1} for 'width', which takes a whole number",
    ),
    "node_of_the_wrong_shape": (
        lambda d: write(d / "shape.json", ui([node(1, "EmptyImage", properties=[1, 2])])),
        "The workflow has a node, link or value of a form ComfyUI does not save",
    ),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComfyTestServer]:
    with ComfyTestServer(tmp_path_factory.mktemp("server")) as running:
        yield running


# Started from a small Python of its own: on Linux a child's peak resident size counts what it
# shared with its parent before exec, and pytest's process is large by now.
MEASURE = """
import os, subprocess, sys, time
start = time.monotonic()
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
print(os.waitstatus_to_exitcode(status), time.monotonic() - start, usage.ru_maxrss * 1024)
"""


def measured(*args: str | Path) -> tuple[int, str, float, int]:
    """The CLI's exit code, stderr, seconds and peak resident bytes (its own, from wait4)."""
    command = [sys.executable, "-c", MEASURE, sys.executable, "-m", "comfyrelay", *map(str, args)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    code, seconds, resident = done.stdout.split()
    return int(code), done.stderr, float(seconds), int(resident)  # ru_maxrss: KiB on Linux


@pytest.mark.parametrize("command", ["convert", "inputs", "run"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_cli_refuses_in_one_sentence(
    case: str, command: str, server: ComfyTestServer, tmp_path: Path
) -> None:
    make, says = CASES[case]
    path = make(tmp_path)
    extra = ["--out", str(tmp_path / "out")] if command == "run" else []
    code, stderr, seconds, resident = measured(command, path, "--server", server.url, *extra)
    assert code == 1, stderr
    assert says in stderr and stderr.startswith("error: "), stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert seconds < SECONDS, f"{case}: {seconds:.1f} s"
    assert resident < RESIDENT, f"{case}: {resident / 2**20:.0f} MB resident"
    assert not server.prompts  # nothing was queued


@pytest.mark.parametrize("case", sorted(CASES))
def test_core_refuses_in_the_same_sentence(
    case: str, server: ComfyTestServer, tmp_path: Path
) -> None:
    make, says = CASES[case]
    with pytest.raises(WorkflowError) as caught:
        Workflow.load(make(tmp_path), server_converter(server.url))
    assert says in str(caught.value)


@pytest.mark.parametrize("case", sorted(CASES))
def test_hosts_workflow_field_says_it(case: str, server: ComfyTestServer, tmp_path: Path) -> None:
    """HostSession.open_workflow, which the Blender and Krita workflow fields call: a file
    that cannot be read raises at once; one that cannot be converted comes back as the error
    of its WorkflowOpened event. Either way the same sentence, never "Unexpected error"."""
    make, says = CASES[case]
    path = str(make(tmp_path))
    session = HostSession()
    settings = HostSettings(backend="comfyui", url=server.url)
    session.configure(settings.backend_settings(), settings.credentials())
    try:
        try:
            session.open_workflow(path)
        except WorkflowError as exc:
            assert says in str(exc)
            return
        seen: list[Any] = []
        deadline = time.monotonic() + 20
        while not any(isinstance(e, WorkflowOpened) for e in seen):
            assert time.monotonic() < deadline, "no WorkflowOpened"
            session.pump(seen.append)
            time.sleep(0.02)
        opened = next(e for e in seen if isinstance(e, WorkflowOpened))
        assert opened.error is not None and says in opened.error, opened.error
        assert "Unexpected error" not in opened.error
    finally:
        session.close()


def test_a_real_nested_template_is_far_inside_the_limits() -> None:
    """The limits stated in the refusals leave room above every real template."""
    from tests.comfyui.test_convert_golden import CURRENT, corpus

    deepest = max(k.count(":") for o in corpus(CURRENT, "templates_json")[1].values() for k in o)
    assert deepest + 1 < MAX_DEPTH
    assert max(len(o) for o in corpus(CURRENT, "templates_json")[1].values()) * 10 < MAX_NODES


def test_metadata_under_the_cap_is_still_read(tmp_path: Path) -> None:
    """The cap refuses only what passes it: a PNG whose prompt text inflates to 60 MB
    (padding around a real graph) still reads."""
    graph = {"1": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x"}}}
    text = json.dumps(graph) + " " * (60 * 2**20)
    path = write(tmp_path / "ok.png", png_with(b"zTXt", "prompt", b"\0\0" + zlib.compress(
        text.encode())))  # fmt: skip
    assert Workflow.load(path).graph == graph


def test_metadata_cap_is_the_cap_on_server_answers() -> None:
    assert MAX_TEXT == MAX_BODY == 64 * 2**20
