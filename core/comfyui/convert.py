"""UI-format workflow -> the API-format graph ComfyUI's frontend (1.58) queues for it."""

# This follows the frontend's graphToPrompt: subgraphs are flattened into `outer:inner` ids,
# frontend-only nodes (Reroute, PrimitiveNode, Note) and muted nodes are left out, bypassed
# nodes pass their inputs through by type, and widget values become inputs. Where frontend
# 1.58 differs from 1.27 we do what 1.58 does (docs/WIRE.md lists each difference).

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConnectionFailed, WorkflowError
from ..jobs.workflow import UIConverter, Workflow
from ..jobs.workflow_file import is_ui
from .nodes import NodeDefs, node_defs
from .ui_graph import (
    FRONTEND_ONLY,
    RENAMED,
    SAVE_NODES,
    SUBGRAPH_INPUT,
    Graph,
    Loader,
    Node,
    collect_definitions,
    first_by_id,
    inner_first,
)  # fmt: skip
from .ui_text import dynamic_prompt, text_replacements
from .ui_widgets import UNDEFINED, Widget, truthy

MUTED, BYPASSED = 2, 4  # litegraph modes: NEVER and BYPASS
# Bounds for files from anywhere: ComfyUI's templates nest subgraphs at most 2 levels deep and
# expand to under 100 nodes, so these leave real workflows far inside while a hostile file
# (a subgraph holding two of the next, 30 levels down) is refused before it is expanded.
MAX_DEPTH = 16  # levels of subgraphs inside subgraphs
MAX_NODES = 10_000  # nodes once every subgraph is expanded
# What a widget's input takes. A value that is an object, a list or null there is refused: no
# frontend saves one, and the server could not take it. Text where a number belongs is sent as
# the frontend sends it (five ComfyUI templates have such values); `run` checks those against
# the server's definitions before queueing.
VALUE_KINDS = {"INT": "a whole number", "FLOAT": "a number", "BOOLEAN": "true or false",
               "STRING": "text"}  # fmt: skip


class UnknownNodeTypes(WorkflowError):
    """The workflow uses node types the server does not have; `missing` maps each type to
    the nodes that use it."""

    def __init__(self, message: str, missing: dict[str, list[str]]) -> None:
        super().__init__(message)
        self.missing = missing


def to_api(
    ui_workflow: dict[str, Any], defs: NodeDefs, *, rng: random.Random | None = None
) -> dict[str, dict[str, Any]]:
    """The API-format graph for a UI-format workflow, using the server's node definitions.

    Raises UnknownNodeTypes (naming every missing type and its nodes) or WorkflowError.
    `rng` picks dynamic-prompt options (`{a|b}`), which the frontend picks at random.
    """
    if not is_ui(ui_workflow):
        raise WorkflowError("This is not a ComfyUI UI-format workflow (no nodes and links).")
    try:
        check_structure(ui_workflow)
        check_types(ui_workflow, defs)
        root = Loader(ui_workflow, defs).load(ui_workflow)
        output = Converter(root, rng or random.Random()).run()
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, RecursionError) as exc:
        # A file from anywhere can hold anything where a node, link or value belongs; say so
        # in a sentence instead of ending in a traceback.
        raise WorkflowError(
            "The workflow has a node, link or value of a form ComfyUI does not save "
            f"({type(exc).__name__}: {str(exc)[:80]}); the file is damaged. Open it in ComfyUI "
            "and save it again."
        ) from None
    check_values_kinds(output, defs)
    return output


def check_structure(data: dict[str, Any]) -> None:
    """Refuse subgraphs that contain themselves, directly or through others, and nesting or
    expansion past MAX_DEPTH / MAX_NODES, before anything is expanded."""
    specs: dict[str, Any] = {}
    collect_definitions(data, specs)
    uses = {sid: instances_in(spec.get("nodes"), specs) for sid, spec in specs.items()}
    names = {sid: str(spec.get("name") or sid) for sid, spec in specs.items()}
    loop = find_loop(uses)
    if loop:
        path = " → ".join(repr(names[sid]) for sid in loop)
        via = "" if len(loop) == 2 else f" through {', '.join(repr(names[s]) for s in loop[1:-1])}"
        raise WorkflowError(
            f"Subgraph {names[loop[0]]!r} contains an instance of itself{via} ({path}), so it "
            "would never end; ComfyUI cannot run it either. Remove that node from the subgraph "
            "in ComfyUI and save the workflow again."
        )
    depth: dict[str, int] = {}
    size: dict[str, int] = {}
    for sid in inner_first(specs):  # each after the ones it holds: no cycles are left
        depth[sid] = 1 + max((depth[c] for c in uses[sid]), default=0)
        size[sid] = min(MAX_NODES + 1, len(first_by_id(specs[sid].get("nodes")))
                        + sum(size[c] for c in uses[sid]))  # fmt: skip
    top = instances_in(data.get("nodes"), specs)
    levels = max((depth[sid] for sid in top), default=0)
    if levels > MAX_DEPTH:
        raise WorkflowError(
            f"Subgraphs in this workflow are nested {levels} levels deep; ComfyRelay reads at "
            f"most {MAX_DEPTH} (ComfyUI's own templates use at most 2). Unpack some of them in "
            "ComfyUI and save the workflow again."
        )
    total = len(first_by_id(data.get("nodes"))) + sum(size[sid] for sid in top)
    if total > MAX_NODES:
        raise WorkflowError(
            f"This workflow's subgraphs expand to more than {MAX_NODES} nodes (the largest "
            "ComfyUI template has under 100); ComfyRelay refuses it rather than expand it."
        )


def instances_in(nodes: Any, specs: dict[str, Any]) -> list[str]:
    """The subgraph ids that these saved nodes are instances of, once per node."""
    kinds = (str(n.get("type")) for n in first_by_id(nodes))
    return [kind for kind in kinds if kind in specs]


def find_loop(uses: dict[str, list[str]]) -> list[str]:
    """A chain of subgraphs that comes back to its first one ([a, b, a]), or []."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in uses:
        if state.get(start):
            continue
        path = [start]
        pending = [iter(uses[start])]
        state[start] = 1
        while pending:  # depth-first without recursion: chains can be long
            child = next(pending[-1], None)
            if child is None:
                state[path.pop()] = 2
                pending.pop()
            elif state.get(child) == 1:
                return [*path[path.index(child) :], child]
            elif not state.get(child):
                state[child] = 1
                path.append(child)
                pending.append(iter(uses[child]))
    return []


def check_values_kinds(output: dict[str, dict[str, Any]], defs: NodeDefs) -> None:
    """Refuse a widget value that is an object, a list or null: a damaged file, named node
    and input."""
    for node_id, entry in output.items():
        definition = defs[entry["class_type"]]
        for name, value in entry["inputs"].items():
            spec = definition.input(name)
            kind = VALUE_KINDS.get(spec.type) if spec is not None else None
            if kind is None or value_fits(value):
                continue
            shown = json_preview(value)
            raise WorkflowError(
                f"Node {node_id} ({entry['_meta']['title']}) has {shown} for {name!r}, which "
                f"takes {kind}; the workflow is damaged. Open it in ComfyUI, set that value and "
                "save it again."
            )


def value_fits(value: Any) -> bool:
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
        return True  # a link
    return not (isinstance(value, dict | list) or value is None)


def json_preview(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:37] + "…"


def load_workflow(path: Path | str, defs: NodeDefs | None = None) -> Workflow:
    """A Workflow from an API .json, a UI .json or a ComfyUI PNG/WebP; UI-format ones are
    converted with `defs` (without them they raise WorkflowError saying what to pass)."""
    return Workflow.load(path, None if defs is None else lambda ui: to_api(ui, defs))


def server_converter(url: str, *, token: str | None = None) -> UIConverter:
    """Converts with the server's definitions, fetched (and cached) only when a UI-format
    workflow needs them."""
    return lambda ui_workflow: to_api(ui_workflow, conversion_defs(url, token=token))


def conversion_defs(url: str, *, token: str | None = None, refresh: bool = False) -> NodeDefs:
    """The server's node definitions to convert with (cached; `refresh` fetches them again).
    When the server cannot be reached, the error says what else to do."""
    try:
        return node_defs.get(url, token=token, refresh=refresh)
    except ConnectionFailed as exc:
        raise ConnectionFailed(
            f"{exc} Converting a UI-format workflow needs the server's node definitions; "
            "start the server, or in ComfyUI use Workflow › Export (API) and load that file."
        ) from None


def check_types(data: dict[str, Any], defs: NodeDefs) -> None:
    """One error for every node type the server lacks (muted and bypassed nodes are never
    sent, so they may be missing)."""
    scopes = find_scopes(data)
    subgraph_ids = {str(spec.get("id")) for _, spec in scopes}
    missing: dict[str, list[str]] = {}
    groups = set(((data.get("extra") or {}).get("groupNodes") or {}).keys())
    for where, scope in [("", data), *scopes]:
        for raw in scope.get("nodes") or []:
            kind = str(raw.get("type") or "") if isinstance(raw, dict) else ""
            known = kind in defs or kind in FRONTEND_ONLY or kind in subgraph_ids
            if known or RENAMED.get(kind) in defs or raw.get("mode") in (MUTED, BYPASSED):
                continue
            label = f"{raw.get('id')}" + (f" '{raw['title']}'" if raw.get("title") else "")
            label += f" in subgraph '{where}'" if where else ""
            missing.setdefault(kind, []).append(label)
    if missing:
        raise unknown_types(missing, groups)


def find_scopes(data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    definitions = data.get("definitions")
    for spec in (definitions.get("subgraphs") or [] if isinstance(definitions, dict) else []):
        if isinstance(spec, dict):
            found.append((str(spec.get("name") or spec.get("id")), spec))
            found += find_scopes(spec)
    return found


def unknown_types(missing: dict[str, list[str]], groups: set[str]) -> UnknownNodeTypes:
    lines = [f"  - {kind}: node {', '.join(nodes)}" for kind, nodes in missing.items()]
    grouped = [k for k in missing if k.split(">", 1)[-1] in groups or k in groups]
    hint = (
        " Group nodes are not supported: in ComfyUI, convert them to subgraphs (or ungroup "
        "them) and save the workflow again."
        if grouped
        else ""
    )
    message = (
        f"The ComfyUI server does not have {len(missing)} node type(s) this workflow uses; "
        "install the custom nodes that provide them on the server (ComfyUI-Manager can), "
        f"restart it, and try again. Nothing was queued.{hint}\n" + "\n".join(lines)
    )
    return UnknownNodeTypes(message, missing)


@dataclass
class Origin:
    """Where an input's value comes from: a node's output, or a promoted widget's value."""

    node_id: str
    slot: int
    value: Any = UNDEFINED
    is_value: bool = False


@dataclass(eq=False)
class Exec:
    """One node as it runs: `id` carries the path through subgraph instances (`12:5`)."""

    id: str
    node: Node
    path: tuple[str, ...]
    instance: Node | None  # the subgraph node this one sits in
    queued: bool = True  # False inside a muted or bypassed subgraph of the workflow itself


class Converter:
    def __init__(self, root: Graph, rng: random.Random) -> None:
        self.root = root
        self.rng = rng
        self.execs: dict[str, Exec] = {}
        self.order: list[Exec] = []

    def run(self) -> dict[str, dict[str, Any]]:
        for node in self.root.nodes.values():
            # Frontend 1.58 queues none of the contents of a muted or bypassed subgraph node
            # of the workflow itself (1.27 queued them all); one nested deeper is expanded
            # whatever its mode, in both.
            self.add(node, (), None, queued=node.mode not in (MUTED, BYPASSED))
        for item in self.order:  # primitives copy their value into the widgets they feed
            if item.node.type == "PrimitiveNode":
                self.apply_primitive(item.node)
        output: dict[str, dict[str, Any]] = {}
        for item in self.order:
            node = item.node
            if node.virtual or node.mode in (MUTED, BYPASSED) or not item.queued:
                continue
            if node.class_type is None:
                raise WorkflowError(f"Node {item.id} ({node.type}) is unknown to the server.")
            output[item.id] = {
                "inputs": self.inputs(item),
                "class_type": node.class_type,
                "_meta": {"title": node.title},
            }
        for entry in output.values():  # links to nodes left out go too
            for name, value in list(entry["inputs"].items()):
                if isinstance(value, list) and len(value) == 2 and value[0] not in output:
                    del entry["inputs"][name]
        return output

    def add(
        self, node: Node, path: tuple[str, ...], instance: Node | None, *, queued: bool = True
    ) -> None:
        # check_structure() has refused self-containing and too deep subgraphs, so this
        # recursion ends within MAX_DEPTH levels.
        item = Exec(":".join((*path, node.id)), node, path, instance, queued)
        if node.subgraph is not None:
            self.execs[item.id] = item
            for inner in node.subgraph.nodes.values():
                self.add(inner, (*path, node.id), node, queued=queued)
        self.execs[item.id] = item
        self.order.append(item)

    def inputs(self, item: Exec) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for widget in item.node.widgets or []:
            if widget.name and widget.in_prompt:
                put(found, widget.name, self.serialized(item.node, widget))
        for index, slot in enumerate(item.node.inputs):
            origin = self.resolve_input(item, index, set())
            if origin is None:
                continue
            if origin.is_value:
                put(found, slot.name, origin.value)
            else:
                found[slot.name] = [origin.node_id, origin.slot]
        return found

    def serialized(self, node: Node, widget: Widget) -> Any:
        value = widget.get()
        if widget.dynamic_prompts and isinstance(value, str):
            return dynamic_prompt(value, self.rng)
        if node.type in SAVE_NODES and widget.name == "filename_prefix" and isinstance(value, str):
            return text_replacements(value, self.root.all_nodes())
        return value

    # ---- links, as ExecutableNodeDTO resolves them ----
    def resolve_input(
        self, item: Exec, slot: int, seen: set[str], kind: Any = None
    ) -> Origin | None:
        self.visit(seen, item, f"[I]{slot}")
        if slot >= len(item.node.inputs):
            raise broken(item, f"has no input {slot}")
        source = item.node.inputs[slot]
        link = item.node.graph.links.get(source.link) if source.link is not None else None
        if link is None:
            return None
        instance = item.instance
        if instance is not None and link.origin_id == SUBGRAPH_INPUT:
            return self.from_subgraph_input(item, instance, link.origin_slot, seen)
        origin = item.node.graph.nodes.get(link.origin_id)
        if origin is None:
            raise broken(item, f"input {source.name!r} is linked to a missing node")
        origin_item = self.execs[":".join((*item.path, origin.id))]
        return self.resolve_output(origin_item, link.origin_slot, kind or source.type, seen)

    def from_subgraph_input(
        self, item: Exec, instance: Node, slot: int, seen: set[str]
    ) -> Origin | None:
        if slot >= len(instance.inputs):
            raise broken(item, f"uses subgraph input {slot}, which its subgraph node lacks")
        outer = instance.inputs[slot]
        link = instance.graph.links.get(outer.link) if outer.link is not None else None
        if link is None:  # unconnected outside: the subgraph node's own widget, if any
            widget = instance.widget_for(outer)
            return None if widget is None else Origin(item.id, -1, widget.get(), is_value=True)
        return self.resolve_input(self.execs[":".join(item.path)], link.target_slot, seen)

    def resolve_output(self, item: Exec, slot: int, kind: Any, seen: set[str]) -> Origin | None:
        self.visit(seen, item, f"[O]{slot}")
        node = item.node
        if node.mode == BYPASSED:
            index = bypass_slot(item, slot, kind)
            return None if index < 0 else self.resolve_input(item, index, seen)
        if node.subgraph is not None:
            if node.mode == MUTED:  # nothing inside is queued: the link is dropped
                return Origin(item.id, slot)
            return self.from_subgraph_output(item, slot, kind, seen)
        if node.virtual:  # a Reroute passes its input on; a PrimitiveNode resolves to nothing
            if slot < len(node.inputs):
                return self.resolve_input(item, slot, seen, kind)
            return None
        return Origin(item.id, slot)

    def from_subgraph_output(
        self, item: Exec, slot: int, kind: Any, seen: set[str]
    ) -> Origin | None:
        sub = item.node.subgraph
        assert sub is not None
        if slot >= len(item.node.outputs) or slot >= len(sub.outputs):
            raise broken(item, f"has no output {slot}")
        links = [sub.links[i] for i in sub.outputs[slot].link_ids if i in sub.links]
        if not links:
            return None
        inner = sub.nodes.get(links[0].origin_id)
        if inner is None:
            raise broken(item, f"output {slot} comes from no node inside the subgraph")
        inner_item = self.execs[":".join((*item.path, item.node.id, inner.id))]
        return self.resolve_output(inner_item, links[0].origin_slot, kind, seen)

    def visit(self, seen: set[str], item: Exec, what: str) -> None:
        key = f"{item.instance.type if item.instance else None}:{item.node.id}{what}"
        if key in seen:
            raise broken(item, "is part of a loop of links")
        seen.add(key)

    # ---- PrimitiveNode ----
    def apply_primitive(self, node: Node) -> None:
        """Copy the primitive's value into every widget it feeds. Like the frontend, this
        looks its links up in the top-level graph, even for a primitive inside a subgraph."""
        out = node.outputs[0] if node.outputs else None
        if out is None or not out.links:
            return
        value = node.widgets[0].get() if node.widgets else UNDEFINED
        if truthy(value) and node.properties.get("Run widget replace on values"):
            value = text_replacements(str(value), self.root.all_nodes())
        for link_id in out.links:
            link = self.root.links.get(link_id)
            if link is None:
                raise WorkflowError(
                    f"The Primitive node {node.id} ({node.title}) inside a subgraph cannot be "
                    "queued (ComfyUI's frontend fails on it too). Replace it with a subgraph "
                    "input or a primitive value node (e.g. PrimitiveInt) in ComfyUI."
                )
            target = node.graph.nodes.get(link.target_id)
            if target is None or link.target_slot >= len(target.inputs):
                continue
            widget = target.widget_for(target.inputs[link.target_slot])
            if widget is not None:
                widget.set(value)


def bypass_slot(item: Exec, slot: int, kind: Any) -> int:
    """The input a bypassed node passes to output `slot`: same index if its type fits,
    else the first input of exactly that type, else the first compatible one."""
    inputs = item.node.inputs
    if slot >= len(item.node.outputs):
        raise broken(item, f"has no output {slot}")
    out_type = item.node.outputs[slot].type
    if kind in ("*", ""):
        return slot if len(inputs) > slot else 0
    if slot < len(inputs) and valid(inputs[slot].type, out_type) and valid(inputs[slot].type, kind):
        return slot
    exact = next((i for i, s in enumerate(inputs) if s.type == kind), -1)
    if exact >= 0:
        return exact
    return next(
        (i for i, s in enumerate(inputs) if valid(s.type, out_type) and valid(s.type, kind)), -1
    )


def valid(a: Any, b: Any) -> bool:
    """litegraph's isValidConnection: `*` fits all; `A,B` lists fit any of theirs."""
    a = 0 if a in ("", "*") else a
    b = 0 if b in ("", "*") else b
    if not a or not b or a == b:
        return True
    left, right = str(a).lower(), str(b).lower()
    if "," not in left and "," not in right:
        return left == right
    return any(valid(x, y) for x in left.split(",") for y in right.split(","))


def put(inputs: dict[str, Any], name: str, value: Any) -> None:
    """A value as JSON carries it: lists boxed (a bare pair would read as a link),
    undefined left out."""
    if value is UNDEFINED:
        inputs.pop(name, None)
    else:
        inputs[name] = {"__value__": value} if isinstance(value, list) else value


def broken(item: Exec, problem: str) -> WorkflowError:
    return WorkflowError(
        f"Node {item.id} ({item.node.title or item.node.type}) {problem}; the workflow is "
        "damaged. Open it in ComfyUI, fix or reconnect that node, and save it again."
    )
