"""Node definitions from a ComfyUI server's /object_info, typed, and cached per server URL."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from ..errors import ComfyRelayError
from ..jobs.workflow import SEED_NAMES
from .client import ComfyClient

Section = Literal["required", "optional", "hidden"]


class InputDef(BaseModel):
    """One input of a node, with the options a UI needs to show it as a field."""

    model_config = ConfigDict(frozen=True)

    name: str
    type: str  # INT, FLOAT, STRING, BOOLEAN, COMBO, or a link type such as IMAGE
    section: Section
    options: dict[str, Any] = {}  # everything the server sent, for what is not typed below
    choices: list[Any] | None = None  # COMBO values
    default: Any = None
    min: float | None = None
    max: float | None = None
    step: float | None = None
    round: float | bool | None = None
    multiline: bool = False
    dynamic_prompts: bool = False
    tooltip: str | None = None
    force_input: bool = False
    control_after_generate: bool | str | None = None  # as sent; None when absent
    upload: str | None = None  # image, video, animated_image or audio
    image_folder: str | None = None
    remote: dict[str, Any] | None = None
    multi_select: bool = False
    widget_type: str | None = None  # the frontend widget to use instead of `type`

    @property
    def has_control(self) -> bool:
        """Whether the frontend adds a `control_after_generate` widget after this one."""
        if self.type == "INT":
            flag = self.control_after_generate
            # Seeds (by name) get one even without the flag.
            return bool(flag) if flag is not None else self.name in SEED_NAMES
        return self.type == "COMBO" and bool(self.control_after_generate)


class OutputDef(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    type: str
    is_list: bool = False
    tooltip: str | None = None


class NodeDef(BaseModel):
    """A node class: its inputs in the order the frontend lays them out, and its outputs."""

    model_config = ConfigDict(frozen=True)

    name: str
    display_name: str
    category: str = ""
    description: str = ""
    output_node: bool = False
    api_node: bool = False
    inputs: list[InputDef] = []  # required, then optional (each in input_order), then hidden
    outputs: list[OutputDef] = []
    # How the server listed required and optional inputs: its `input_order` when it sent one
    # (ComfyUI 0.3.4x+), else the key order. The frontend lays widgets out by the former
    # and maps old widget values by the latter.
    has_input_order: bool = False
    declared: list[str] = []

    def input(self, name: str) -> InputDef | None:
        return next((i for i in self.inputs if i.name == name), None)

    @property
    def visible_inputs(self) -> list[InputDef]:
        return [i for i in self.inputs if i.section != "hidden"]


class NodeDefs(Mapping[str, NodeDef]):
    """All node classes of one server, parsed on first use (a server has about a thousand)."""

    def __init__(self, object_info: Mapping[str, Any]) -> None:
        self.raw = {k: v for k, v in object_info.items() if isinstance(v, dict)}
        self._parsed: dict[str, NodeDef] = {}
        self._lock = threading.Lock()

    def __getitem__(self, name: str) -> NodeDef:
        with self._lock:
            if name not in self._parsed:
                self._parsed[name] = parse_node(name, self.raw[name])
            return self._parsed[name]

    def __contains__(self, name: object) -> bool:
        return name in self.raw

    def __iter__(self) -> Iterator[str]:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)


def parse_node(name: str, data: Mapping[str, Any]) -> NodeDef:
    spec: dict[str, Any] = data["input"] if isinstance(data.get("input"), dict) else {}
    order: dict[str, Any] = data["input_order"] if isinstance(data.get("input_order"), dict) else {}
    inputs = [
        parse_input(input_name, section, raw)
        for section in ("required", "optional", "hidden")
        for input_name, raw in ordered(spec.get(section) or {}, order.get(section))
    ]
    types = data.get("output") or []
    names = data.get("output_name") or []
    lists = data.get("output_is_list") or []
    tips = data.get("output_tooltips") or []
    outputs = [
        OutputDef(
            name=names[i] if i < len(names) and names[i] else f"output_{i}",
            type="COMBO" if isinstance(kind, list) else str(kind),
            is_list=bool(lists[i]) if i < len(lists) else False,
            tooltip=tips[i] if i < len(tips) and isinstance(tips[i], str) else None,
        )
        for i, kind in enumerate(types)
    ]
    return NodeDef(
        name=str(data.get("name") or name),
        display_name=str(data.get("display_name") or data.get("name") or name),
        category=str(data.get("category") or ""),
        description=str(data.get("description") or ""),
        output_node=bool(data.get("output_node")),
        api_node=bool(data.get("api_node")),
        inputs=inputs,
        outputs=outputs,
        has_input_order=bool(order),
        declared=[n for section in ("required", "optional") for n in spec.get(section) or {}],
    )


def ordered(section: Mapping[str, Any], order: Any) -> list[tuple[str, Any]]:
    """A section's inputs in the server's `input_order`, then any it does not list."""
    names = [n for n in order if n in section] if isinstance(order, list) else []
    return [(n, section[n]) for n in names] + [(n, v) for n, v in section.items() if n not in names]


def parse_input(name: str, section: Section, raw: Any) -> InputDef:
    if section == "hidden" or not isinstance(raw, list | tuple) or not raw:
        return InputDef(name=name, type=str(raw if isinstance(raw, str) else "*"), section=section)
    head = raw[0]
    opts = dict(raw[1]) if len(raw) > 1 and isinstance(raw[1], dict) else {}
    combo = isinstance(head, list) or head == "COMBO"
    choices = head if isinstance(head, list) else opts.get("options") if combo else None
    upload = next(
        (k for k in ("image", "video", "animated_image", "audio") if opts.get(f"{k}_upload")), None
    )
    folder = opts.get("image_folder")
    widget_type = opts.get("widgetType")
    return InputDef(
        name=name,
        type="COMBO" if combo else str(head),
        section=section,
        options=opts,
        choices=list(choices) if isinstance(choices, list) else None,
        default=opts.get("default"),
        min=number(opts.get("min")),
        max=number(opts.get("max")),
        step=number(opts.get("step")),
        round=opts.get("round") if isinstance(opts.get("round"), int | float) else None,
        multiline=bool(opts.get("multiline")),
        dynamic_prompts=bool(opts.get("dynamicPrompts")),
        tooltip=opts.get("tooltip") if isinstance(opts.get("tooltip"), str) else None,
        # The frontend still honours the old `defaultInput` flag on optional inputs.
        force_input=bool(
            opts.get("forceInput") or (section == "optional" and opts.get("defaultInput"))
        ),
        control_after_generate=flag(opts.get("control_after_generate")),
        upload=upload,
        image_folder=folder if isinstance(folder, str) else None,
        remote=opts.get("remote") if isinstance(opts.get("remote"), dict) else None,
        multi_select=bool(opts.get("multi_select")),
        widget_type=widget_type if isinstance(widget_type, str) else None,
    )


def number(value: Any) -> float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def flag(value: Any) -> bool | str | None:
    return value if isinstance(value, bool | str) else None


class NodeDefCache:
    """Node definitions per server URL, fetched once and shared between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._defs: dict[str, NodeDefs] = {}

    def get(
        self,
        url: str,
        *,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
        refresh: bool = False,
    ) -> NodeDefs:
        """The server's definitions; `refresh=True` fetches them again (new custom nodes,
        new model files in the COMBO lists). Raises ComfyRelayError if the server fails."""
        key = url.rstrip("/")
        with self._lock:
            if not refresh and key in self._defs:
                return self._defs[key]
        defs = fetch_node_defs(key, token=token, headers=headers)
        with self._lock:
            self._defs[key] = defs
        return defs


def fetch_node_defs(
    url: str, *, token: str | None = None, headers: Mapping[str, str] | None = None
) -> NodeDefs:
    """Fetch a server's /object_info now (no cache)."""
    client = ComfyClient(url, token=token, headers=headers)
    try:
        data = client.object_info()
    finally:
        client.close()
    if not data:
        raise ComfyRelayError(
            f"The ComfyUI server at {client.url} sent no node definitions (/object_info). "
            "Check that the URL points at ComfyUI itself."
        )
    return NodeDefs(data)


node_defs = NodeDefCache()  # the process-wide cache hosts and the CLI share
