"""Runs one prompt the way ComfyUI 0.3.64's PromptExecutor does, frame for frame.

Who receives what (execution.py, main.py, comfy_execution/progress.py): `execution_*`,
`executing` and `executed` go only to the prompt's client_id and nowhere without one;
`progress_state`, `progress`, previews, progress text and `execution_interrupted` go to the
client_id, or to every socket when the prompt has none.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import struct
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Protocol

from PIL import Image

from tests.servers.comfy_nodes import NODES, Ctx, Folders, NodeResult

PROGRESS_TICKS = 4


@dataclass
class Prompt:
    """A queue item: [number, prompt_id, prompt, extra_data, outputs_to_execute]."""

    number: float
    prompt_id: str
    graph: dict[str, Any]
    extra_data: dict[str, Any]
    outputs: list[str]

    @property
    def client_id(self) -> str | None:
        return self.extra_data.get("client_id")

    def item(self) -> list[Any]:
        return [self.number, self.prompt_id, self.graph, self.extra_data, self.outputs]


@dataclass
class Run:
    """What one execution produced: history's outputs, meta, status and messages."""

    prompt: Prompt
    messages: list[list[Any]] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    progress: dict[str, dict[str, Any]] = field(default_factory=dict)
    executed: list[str] = field(default_factory=list)
    success: bool = True


@dataclass
class CacheEntry:
    outputs: tuple[Any, ...]
    ui: dict[str, Any]


class Host(Protocol):
    """What the executor needs from the server."""

    folders: Folders
    node_delay: float
    previews: bool
    preview_format: str
    float32_pixels: bool
    progress_states: bool  # send `progress_state` frames (servers after 0.3.44)

    async def send(self, event: str, data: dict[str, Any], sid: str | None) -> None: ...
    async def send_binary(self, event: int, payload: bytes, sid: str | None) -> None: ...
    def negotiated(self, sid: str | None) -> bool: ...
    def report(self, ui: dict[str, Any]) -> dict[str, Any]: ...
    async def on_execution_start(self) -> None: ...


class Interrupted(Exception):
    pass


class NodeFailed(Exception):
    def __init__(self, error: Exception, inputs: dict[str, Any]) -> None:
        super().__init__(str(error))
        self.error, self.inputs = error, inputs


def is_link(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int | float)
    )


class Executor:
    def __init__(self, host: Host) -> None:
        self.host = host
        # ComfyUI's classic cache: keyed by input signature, holding only the last prompt's nodes.
        self.cache: dict[str, CacheEntry] = {}
        self.interrupt_flag = False
        self.client_id: str | None = None  # the last prompt's client, as server.client_id
        self.last_node_id: str | None = None  # re-sent to that client when it reconnects

    async def execute(self, prompt: Prompt) -> Run:
        self.interrupt_flag = False
        self.client_id = prompt.client_id
        run = Run(prompt)
        await self._message(run, "execution_start", {"prompt_id": prompt.prompt_id})
        await self.host.on_execution_start()
        keys = signatures(prompt.graph, self.host.folders)
        self.cache = {k: v for k, v in self.cache.items() if k in keys.values()}
        cached = [nid for nid in prompt.graph if keys[nid] in self.cache]
        await self._message(
            run, "execution_cached", {"nodes": cached, "prompt_id": prompt.prompt_id}
        )
        for nid in execution_order(prompt.graph, prompt.outputs, set(cached)):
            try:
                await self._node(run, nid, keys)
            except Interrupted:
                await self._stopped(run, nid, "execution_interrupted", cached, None)
                break
            except NodeFailed as failure:
                await self._stopped(run, nid, "execution_error", cached, failure)
                break
        else:
            await self._message(run, "execution_success", {"prompt_id": prompt.prompt_id})
        self.last_node_id = None
        return run

    # ---- frames ----
    async def _message(
        self, run: Run, event: str, data: dict[str, Any], broadcast: bool = False
    ) -> None:
        """PromptExecutor.add_message: recorded for history, sent to the client if any."""
        data = {**data, "timestamp": int(time.time() * 1000)}
        run.messages.append([event, data])
        if self.client_id is not None or broadcast:
            await self.host.send(event, data, self.client_id)

    async def _to_client(self, event: str, data: dict[str, Any]) -> None:
        if self.client_id is not None:
            await self.host.send(event, data, self.client_id)

    async def _progress_state(self, run: Run, nid: str, **state: Any) -> None:
        pid = run.prompt.prompt_id
        run.progress.setdefault(nid, {}).update(state)
        if not self.host.progress_states:
            return
        nodes = {
            node_id: {
                **s,
                "node_id": node_id,
                "prompt_id": pid,
                "display_node_id": node_id,
                "parent_node_id": None,
                "real_node_id": node_id,
            }
            for node_id, s in run.progress.items()
        }
        await self.host.send("progress_state", {"prompt_id": pid, "nodes": nodes}, self.client_id)

    async def _stopped(
        self,
        run: Run,
        nid: str,
        event: str,
        cached: list[str],
        failure: NodeFailed | None,
    ) -> None:
        run.success = False
        data: dict[str, Any] = {
            "prompt_id": run.prompt.prompt_id,
            "node_id": nid,
            "node_type": run.prompt.graph[nid]["class_type"],
            "executed": list(run.executed),
        }
        if failure is None:
            await self._message(run, event, data, broadcast=True)
            return
        await self._message(run, event, {**data, **error_details(failure, cached)})

    # ---- one node ----
    async def _node(self, run: Run, nid: str, keys: dict[str, str]) -> None:
        key = keys[nid]
        if key in self.cache:  # only cached *output* nodes are visited: re-report them
            await self._report(run, nid, self.cache[key].ui, always=True)
            await self._progress_state(run, nid, value=1, max=1, state="finished")
            return
        await self._progress_state(run, nid, value=0.0, max=1.0, state="running")
        node = run.prompt.graph[nid]
        inputs = self._inputs(node, keys)
        if self.client_id is not None:
            self.last_node_id = nid
        await self._to_client(
            "executing", {"node": nid, "display_node": nid, "prompt_id": run.prompt.prompt_id}
        )
        self._check_interrupt()
        await self._ticks(run, nid)
        try:
            ctx = Ctx(self.host.folders, nid, self.host.float32_pixels)
            result = await asyncio.to_thread(NODES[node["class_type"]].run, ctx, **inputs)
        except Exception as error:
            raise NodeFailed(error, inputs) from error
        await self._side_frames(run, nid, result, inputs)
        self.cache[key] = CacheEntry(result.outputs, result.ui)
        await self._report(run, nid, result.ui)
        value = run.progress[nid]["max"]
        await self._progress_state(run, nid, value=value, state="finished")
        run.executed.append(nid)

    def _inputs(self, node: dict[str, Any], keys: dict[str, str]) -> dict[str, Any]:
        spec = NODES[node["class_type"]]
        names = {**spec.inputs("required"), **spec.inputs("optional")}
        return {
            name: self.cache[keys[v[0]]].outputs[int(v[1])] if is_link(v) else v
            for name, v in node["inputs"].items()
            if name in names
        }

    def _check_interrupt(self) -> None:
        """model_management.throw_exception_if_processing_interrupted: clears as it throws."""
        if self.interrupt_flag:
            self.interrupt_flag = False
            raise Interrupted()

    async def _ticks(self, run: Run, nid: str) -> None:
        """A sampler-like node: `node_delay` seconds in PROGRESS_TICKS steps, each one a
        point where an interrupt takes effect, as ComfyUI's progress hook is."""
        if self.host.node_delay <= 0:
            return
        for step in range(1, PROGRESS_TICKS + 1):
            await asyncio.sleep(self.host.node_delay / PROGRESS_TICKS)
            self._check_interrupt()
            await self._progress_state(run, nid, value=step, max=PROGRESS_TICKS)
            progress = {"value": step, "max": PROGRESS_TICKS, "prompt_id": run.prompt.prompt_id}
            await self.host.send("progress", {**progress, "node": nid}, self.client_id)

    async def _side_frames(
        self, run: Run, nid: str, result: NodeResult, inputs: dict[str, Any]
    ) -> None:
        if result.text is not None:
            node_id = nid.encode()
            payload = struct.pack(">I", len(node_id)) + node_id + result.text.encode()
            await self.host.send_binary(3, payload, self.client_id)
        if self.host.previews:
            await self._preview(run, nid, first_image(result.outputs, inputs))

    async def _preview(self, run: Run, nid: str, image: Image.Image) -> None:
        fmt = self.host.preview_format
        buf = io.BytesIO()
        image.convert("RGB").resize((16, 16)).save(buf, fmt)
        if self.host.negotiated(self.client_id):
            meta = {
                "node_id": nid,
                "prompt_id": run.prompt.prompt_id,
                "display_node_id": nid,
                "parent_node_id": None,
                "real_node_id": nid,
                "image_type": "image/png" if fmt == "PNG" else "image/jpeg",
            }
            raw = json.dumps(meta).encode()
            payload = struct.pack(">I", len(raw)) + raw + buf.getvalue()
            await self.host.send_binary(4, payload, self.client_id)
        else:
            payload = struct.pack(">I", 2 if fmt == "PNG" else 1) + buf.getvalue()
            await self.host.send_binary(1, payload, self.client_id)

    async def _report(self, run: Run, nid: str, ui: dict[str, Any], always: bool = False) -> None:
        """`executed` for a node with UI output (a cached output node always gets one)."""
        if not ui and not always:
            return
        shown = self.host.report(ui) if ui else None
        if shown:
            run.outputs[nid] = shown
            run.meta[nid] = {
                "node_id": nid,
                "display_node": nid,
                "parent_node": None,
                "real_node_id": nid,
            }
        data = {
            "node": nid,
            "display_node": nid,
            "output": shown,
            "prompt_id": run.prompt.prompt_id,
        }
        await self._to_client("executed", data)


def error_details(failure: NodeFailed, cached: list[str]) -> dict[str, Any]:
    error = failure.error
    exception_type = type(error).__qualname__
    if type(error).__module__ != "builtins":
        exception_type = f"{type(error).__module__}.{exception_type}"
    return {
        "exception_message": f"{error}\n",
        "exception_type": exception_type,
        "traceback": traceback.format_tb(error.__traceback__),
        "current_inputs": {k: [format_value(v)] for k, v in failure.inputs.items()},
        "current_outputs": list(cached),
    }


def format_value(value: Any) -> Any:
    if value is None or isinstance(value, int | float | bool | str):
        return value
    return str(value)


def first_image(outputs: tuple[Any, ...], inputs: dict[str, Any]) -> Image.Image:
    """Something to preview: the node's first image output, else an image input, else grey."""
    for value in (*outputs, *inputs.values()):
        if isinstance(value, list) and value and isinstance(value[0], Image.Image):
            return value[0]
    return Image.new("RGB", (16, 16), (128, 128, 128))


def execution_order(graph: dict[str, Any], outputs: list[str], cached: set[str]) -> list[str]:
    """ExecutionList's order: cached inputs are not staged at all (only cached output nodes
    are, to re-send their `executed`), and among the ready nodes an output node goes first,
    then one feeding an output, then one two steps from an output (ux_friendly_pick_node)."""
    blocking: dict[str, dict[str, None]] = {}  # node -> the pending nodes waiting for it
    waits: dict[str, int] = {}

    def add(start: str) -> None:
        stack, links = [start], []
        while stack:
            nid = stack.pop()
            if nid in waits:
                continue
            waits[nid], blocking[nid] = 0, {}
            for value in graph[nid]["inputs"].values():
                if is_link(value) and value[0] not in cached:
                    stack.append(value[0])
                    links.append((value[0], nid))
        for source, target in links:
            if target not in blocking[source]:
                blocking[source][target] = None
                waits[target] += 1

    for nid in outputs:
        add(nid)
    order: list[str] = []
    while ready := [nid for nid, count in waits.items() if count == 0]:
        nid = _pick(graph, ready, blocking)
        order.append(nid)
        del waits[nid]
        for target in blocking.pop(nid):
            waits[target] -= 1
    return order


def _pick(graph: dict[str, Any], ready: list[str], blocking: dict[str, dict[str, None]]) -> str:
    def is_output(nid: str) -> bool:
        return NODES[graph[nid]["class_type"]].output_node

    def near_output(nid: str, steps: int) -> bool:
        if steps == 0:
            return is_output(nid)
        return any(near_output(target, steps - 1) for target in blocking[nid])

    for steps in (0, 1, 2):
        for nid in ready:
            if near_output(nid, steps):
                return nid
    return ready[0]


def signatures(graph: dict[str, Any], folders: Folders) -> dict[str, str]:
    """Each node's cache key: class, literal inputs, IS_CHANGED and its ancestors' keys.
    Node ids do not count, so an identical graph under other ids hits the cache too."""
    keys: dict[str, str] = {}

    def key(nid: Any, path: frozenset[Any]) -> str:
        if nid in keys:
            return keys[nid]
        node = graph.get(nid)
        if not isinstance(node, dict) or nid in path:
            return f"unresolvable:{nid}"
        inputs = node.get("inputs", {})
        parts = {
            name: ["link", key(v[0], path | {nid}), v[1]] if is_link(v) else v
            for name, v in sorted(inputs.items())
        }
        spec = NODES.get(node.get("class_type", ""))
        hook = spec.is_changed if spec else None
        changed = hook(folders, inputs.get(spec.validated)) if spec and hook else ""
        raw = json.dumps([node.get("class_type"), parts, changed], sort_keys=True, default=str)
        keys[nid] = hashlib.sha256(raw.encode()).hexdigest()
        return keys[nid]

    for nid in graph:
        key(nid, frozenset())
    return keys
