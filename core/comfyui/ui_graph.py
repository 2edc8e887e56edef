"""A UI-format workflow loaded as ComfyUI's frontend (1.58) loads it, subgraphs included."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import WorkflowError
from .nodes import NodeDef, NodeDefs
from .ui_widgets import Widget, apply_widgets_values, frontend_inputs, is_widget, make_widgets

FRONTEND_ONLY = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}  # never sent to a server
SAVE_NODES = {
    "SaveImage", "SaveAnimatedWEBP", "SaveWEBM", "SaveAudio", "SaveGLB", "SaveAnimatedPNG",
    "CLIPSave", "VAESave", "ModelSave", "LoraSave", "SaveLatent",
}  # fmt: skip
RENAMED = {  # types the frontend renames as it loads
    "T2IAdapterLoader": "ControlNetLoader",
    "ConditioningAverage ": "ConditioningAverage",
    "SDV_img2vid_Conditioning": "SVD_img2vid_Conditioning",
}
SUBGRAPH_INPUT = "-10"  # the ids of a subgraph's input and output nodes in its links
REPLACE_PROPERTY = "Run widget replace on values"


@dataclass
class Link:
    id: int
    origin_id: str
    origin_slot: int
    target_id: str
    target_slot: int
    type: Any = None


@dataclass
class InSlot:
    name: str
    type: Any
    link: int | None = None
    widget: str | None = None  # the widget this input sets, when it has one


@dataclass
class OutSlot:
    name: str
    type: Any
    links: list[int] = field(default_factory=list)


@dataclass
class IOSlot:
    """A subgraph's own input or output, with the links inside that use it."""

    name: str
    type: Any
    link_ids: list[int] = field(default_factory=list)


@dataclass(eq=False)
class Node:
    id: str
    type: str
    title: str
    mode: int
    graph: Graph
    inputs: list[InSlot] = field(default_factory=list)
    outputs: list[OutSlot] = field(default_factory=list)
    widgets: list[Widget] | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    class_type: str | None = None  # None: handled by the frontend, or unknown
    virtual: bool = False
    subgraph: Graph | None = None  # for an instance of a subgraph
    widgets_values: Any = None

    def widget_for(self, slot: InSlot) -> Widget | None:
        if slot.widget is None:
            return None
        return next((w for w in self.widgets or [] if w.name == slot.widget), None)


@dataclass(eq=False)
class Graph:
    id: str | None  # None for the workflow itself
    name: str
    nodes: dict[str, Node] = field(default_factory=dict)
    links: dict[int, Link] = field(default_factory=dict)
    inputs: list[IOSlot] = field(default_factory=list)
    outputs: list[IOSlot] = field(default_factory=list)
    configured: bool = False

    def all_nodes(self) -> list[Node]:
        """Every node, subgraph contents first, as the frontend walks them."""
        found: list[Node] = []
        for node in self.nodes.values():
            if node.subgraph is not None:
                found += node.subgraph.all_nodes()
            found.append(node)
        return found


class Loader:
    """Builds the graphs of one workflow against one server's node definitions."""

    def __init__(self, data: dict[str, Any], defs: NodeDefs) -> None:
        self.defs = defs
        self.specs: dict[str, Any] = {}  # subgraph id -> its definition
        collect_definitions(data, self.specs)
        self.specs = unique_node_ids(data, self.specs)
        self.subgraphs = {sid: new_subgraph(spec) for sid, spec in self.specs.items()}
        self.root = Graph(None, "workflow")

    def load(self, data: dict[str, Any]) -> Graph:
        # Subgraphs used by others first (frontend 1.58), so every subgraph node finds the
        # widgets of its contents whatever order the definitions were saved in.
        for sid in inner_first(self.specs):
            self.configure(self.subgraphs[sid], self.specs[sid])
        self.configure(self.root, data)
        for node in self.root.nodes.values():
            strip_sampler_prefix(node)
        for node in self.root.all_nodes():
            if node.type == "PrimitiveNode":
                primitive_widget(node)
        return self.root

    def configure(self, graph: Graph, data: dict[str, Any]) -> None:
        if graph.configured:
            return
        graph.configured = True
        for raw in data.get("links") or []:
            link = parse_link(raw)
            if link is not None:
                graph.links[link.id] = link
        raw_nodes = first_by_id(data.get("nodes"))
        for raw in raw_nodes:  # all nodes exist before any is configured, as in litegraph
            node = Node(str(raw.get("id")), node_type(raw), "", 0, graph)
            graph.nodes[node.id] = node
        for raw in raw_nodes:
            self.configure_node(graph.nodes[str(raw.get("id"))], raw)
        fix_link_slots(graph)

    def configure_node(self, node: Node, raw: dict[str, Any]) -> None:
        mode = raw.get("mode")
        node.mode = mode if isinstance(mode, int) else 0
        node.properties = dict(raw.get("properties") or {})
        node.widgets_values = raw.get("widgets_values")
        inputs = [parse_in(s) for s in raw.get("inputs") or [] if isinstance(s, dict)]
        outputs = [parse_out(s) for s in raw.get("outputs") or [] if isinstance(s, dict)]
        title = str(raw.get("title") or "")
        if node.type in self.subgraphs:
            self.configure_instance(node, self.subgraphs[node.type], inputs, outputs)
            node.title = title or self.subgraphs[node.type].name
        elif node.type in FRONTEND_ONLY:
            node.inputs, node.outputs, node.virtual = inputs, outputs, True
            node.title = title or node.type
            if node.type == "PrimitiveNode":
                node.properties.setdefault(REPLACE_PROPERTY, False)
        elif node.type in self.defs:
            self.configure_comfy(node, self.defs[node.type], inputs, outputs)
            node.title = title or self.defs[node.type].display_name
        else:  # unknown (tolerated only when muted or bypassed): a placeholder, as in litegraph
            node.inputs, node.outputs, node.title = inputs, outputs, title

    def configure_comfy(
        self, node: Node, definition: NodeDef, inputs: list[InSlot], outputs: list[OutSlot]
    ) -> None:
        node.class_type = definition.name
        if node.type not in SAVE_NODES:
            node.properties.setdefault("Node name for S&R", node.type)
        specs = frontend_inputs(definition)
        sockets = [InSlot(s.name, s.type) for s in specs if not is_widget(s)]
        sockets += [InSlot(s.name, s.type, widget=s.name) for s in specs if is_widget(s)]
        by_name = {s.name: s for s in inputs}
        for slot in sockets:  # saved link by name; name, type and widget from the definition
            saved = by_name.get(slot.name)
            if saved is not None:
                slot.link = saved.link
                slot.widget = slot.widget or saved.widget
        known = {s.name for s in sockets}
        node.inputs = sockets + [s for s in inputs if s.name not in known]
        made = [OutSlot(o.name, o.type) for o in definition.outputs]
        for i, saved_out in enumerate(outputs):
            if i < len(made):
                made[i].links = saved_out.links
            else:
                made.append(saved_out)
        node.outputs = made
        node.widgets = make_widgets(definition, specs)
        apply_widgets_values(definition, node.widgets, node.widgets_values, specs)

    def configure_instance(
        self, node: Node, sub: Graph, inputs: list[InSlot], outputs: list[OutSlot]
    ) -> None:
        node.subgraph, node.virtual = sub, True
        saved = {s.name: s for s in inputs}  # the subgraph's inputs, linked as saved by name
        node.inputs = [InSlot(s.name, s.type) for s in sub.inputs]
        for slot in node.inputs:
            if slot.name in saved:
                slot.link, slot.widget = saved[slot.name].link, saved[slot.name].widget
        node.outputs = [OutSlot(s.name, s.type) for s in sub.outputs]
        node.outputs[: len(outputs)] = outputs
        node.widgets = promoted_widgets(node, sub)
        if isinstance(node.widgets_values, list):
            keeping = [w for w in node.widgets if w.saved]
            for widget, value in zip(keeping, node.widgets_values, strict=False):
                widget.set(value)


def promoted_widgets(node: Node, sub: Graph) -> list[Widget]:
    """The widgets a subgraph node shows: for each of its inputs, a view of the widget of
    the first inner input it feeds whose node has a widget of that input's name."""
    widgets: list[Widget] = []
    for slot in node.inputs:
        io = next((s for s in sub.inputs if s.name == slot.name), None)
        for link_id in io.link_ids if io else []:
            link = sub.links.get(link_id)
            inner = sub.nodes.get(link.target_id) if link else None
            if link is None or inner is None or link.target_slot >= len(inner.inputs):
                continue
            widget = inner.widget_for(inner.inputs[link.target_slot])
            if widget is not None:
                widgets.append(widget.promoted(slot.name))
                slot.widget = slot.name
                break
    return widgets


def primitive_widget(node: Node) -> None:
    """A PrimitiveNode takes the widget of the first input it feeds, then its saved value."""
    out = node.outputs[0] if node.outputs else None
    if out is None or not out.links or node.widgets:
        return
    link = node.graph.links.get(out.links[0])
    target = node.graph.nodes.get(link.target_id) if link else None
    if link is None or target is None or link.target_slot >= len(target.inputs):
        return
    theirs = target.widget_for(target.inputs[link.target_slot])
    if theirs is None:  # not an input with a widget: the primitive stays empty
        return
    widget = Widget("value", theirs.get())
    node.widgets = [widget]
    values = node.widgets_values
    if isinstance(values, list) and values:
        widget.set(values[0])


def strip_sampler_prefix(node: Node) -> None:
    """Very old KSamplers saved `sample_euler`; the frontend drops the prefix."""
    if node.type not in ("KSampler", "KSamplerAdvanced"):
        return
    for widget in node.widgets or []:
        if widget.name == "sampler_name" and str(widget.value).startswith("sample_"):
            widget.value = str(widget.value)[7:]


def fix_link_slots(graph: Graph) -> None:
    """Point each link at the input that holds it (saved slot numbers can be stale)."""
    for node in graph.nodes.values():
        for index, slot in enumerate(node.inputs):
            link = graph.links.get(slot.link) if slot.link else None
            if link is not None:
                link.target_slot = index


def first_by_id(nodes: Any) -> list[dict[str, Any]]:
    """The nodes of one graph, the first of any that share an id (as frontend 1.58 keeps)."""
    found: dict[str, dict[str, Any]] = {}
    for raw in nodes if isinstance(nodes, list) else []:
        if isinstance(raw, dict):
            found.setdefault(str(raw.get("id")), raw)
    return list(found.values())


def inner_first(specs: dict[str, Any]) -> list[str]:
    """Subgraph ids, each after the subgraphs its nodes are instances of (Kahn's order as
    the frontend sorts them; the saved order where that is not possible)."""
    uses = {
        sid: {str(n.get("type")) for n in first_by_id(spec.get("nodes"))} & specs.keys()
        for sid, spec in specs.items()
    }
    waiting = {sid: len(used) for sid, used in uses.items()}
    users: dict[str, list[str]] = {sid: [] for sid in specs}
    for sid, used in uses.items():
        for inner in used:
            users[inner].append(sid)
    ready = [sid for sid, count in waiting.items() if count == 0]
    order: list[str] = []
    while ready:
        sid = ready.pop(0)
        order.append(sid)
        for user in users[sid]:
            waiting[user] -= 1
            if waiting[user] == 0:
                ready.append(user)
    return order if len(order) == len(specs) else list(specs)


def unique_node_ids(data: dict[str, Any], specs: dict[str, Any]) -> dict[str, Any]:
    """The subgraph definitions with node ids unique across the whole workflow.

    Frontend 1.58 gives an inner node whose id the workflow's own nodes or an earlier
    subgraph already use the next free id after the workflow's last node id, and points the
    subgraph's links at it; ids in the prompt (`outer:inner`) follow. 1.27 kept ids as saved.
    The definitions come back as copies; the workflow itself is left as it was.
    """
    used = {str(n.get("id")) for n in first_by_id(data.get("nodes"))}
    numbers = {int(i) for i in used if is_int_id(i)}
    state = data.get("state")
    saved = [data.get("last_node_id"), state.get("lastNodeId") if isinstance(state, dict) else 0]
    last = max([int(str(v)) for v in saved if is_int_id(v)] or [0])
    fixed: dict[str, Any] = {}
    for sid, spec in specs.items():
        nodes = first_by_id(spec.get("nodes"))
        remap: dict[str, int] = {}
        for raw in nodes:
            key = str(raw.get("id"))
            if key in used:
                new = last + 1
                while new in numbers:
                    new += 1
                last = new
                remap[key] = new
                used.add(str(new))
                numbers.add(new)
            else:
                used.add(key)
                if is_int_id(key):
                    numbers.add(int(key))
                    last = max(last, int(key))
        if not remap:
            fixed[sid] = {**spec, "nodes": nodes}
            continue
        moved = [{**n, "id": remap[str(n.get("id"))]} if str(n.get("id")) in remap else n
                 for n in nodes]  # fmt: skip
        fixed[sid] = {**spec, "nodes": moved, "links": [relink(k, remap) for k in
                                                         spec.get("links") or []]}  # fmt: skip
    return fixed


def relink(raw: Any, remap: dict[str, int]) -> Any:
    """A saved link (either form) with its ends moved to their new node ids."""
    if isinstance(raw, list) and len(raw) >= 5:
        raw = list(raw)
        for at in (1, 3):
            raw[at] = remap.get(str(raw[at]), raw[at])
    elif isinstance(raw, dict):
        raw = {**raw}
        for key in ("origin_id", "target_id"):
            raw[key] = remap.get(str(raw.get(key)), raw.get(key))
    return raw


def is_int_id(value: Any) -> bool:
    """A node id that is a whole number, as the frontend counts them."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value >= 0
    return isinstance(value, str) and value.isdigit() and str(int(value)) == value


def collect_definitions(data: dict[str, Any], found: dict[str, Any]) -> None:
    for spec in (data.get("definitions") or {}).get("subgraphs") or []:
        if isinstance(spec, dict) and spec.get("id") is not None:
            found.setdefault(str(spec["id"]), spec)
            collect_definitions(spec, found)


def new_subgraph(spec: dict[str, Any]) -> Graph:
    def io(items: Any) -> list[IOSlot]:
        return [
            IOSlot(str(s.get("name")), s.get("type"), [int(i) for i in s.get("linkIds") or []])
            for s in items or []
            if isinstance(s, dict)
        ]

    return Graph(str(spec["id"]), str(spec.get("name") or ""), inputs=io(spec.get("inputs")),
                 outputs=io(spec.get("outputs")))  # fmt: skip


def node_type(raw: dict[str, Any]) -> str:
    kind = str(raw.get("type") or "")
    return RENAMED.get(kind, kind)


def parse_link(raw: Any) -> Link | None:
    """A link in either form: the older list or the newer object."""
    try:
        if isinstance(raw, list) and len(raw) >= 5:
            return Link(int(raw[0]), str(raw[1]), int(raw[2]), str(raw[3]), int(raw[4]),
                        raw[5] if len(raw) > 5 else None)  # fmt: skip
        if isinstance(raw, dict):
            return Link(
                int(raw["id"]), str(raw["origin_id"]), int(raw["origin_slot"]),
                str(raw["target_id"]), int(raw["target_slot"]), raw.get("type"),
            )  # fmt: skip
    except (KeyError, TypeError, ValueError):
        pass
    raise WorkflowError(f"The workflow has a link that cannot be read: {str(raw)[:80]}")


def parse_in(raw: dict[str, Any]) -> InSlot:
    widget = raw.get("widget")
    name = widget.get("name") if isinstance(widget, dict) else None
    link = raw.get("link")
    return InSlot(
        str(raw.get("name") or ""),
        raw.get("type"),
        int(link) if isinstance(link, int | float) and not isinstance(link, bool) else None,
        str(name) if name is not None else None,
    )


def parse_out(raw: dict[str, Any]) -> OutSlot:
    links = raw.get("links")
    ids = [int(i) for i in links if isinstance(i, int | float)] if isinstance(links, list) else []
    return OutSlot(str(raw.get("name") or ""), raw.get("type"), ids)
