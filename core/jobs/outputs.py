"""Which of a finished job's files are its results, the same rule on every back end
(docs/WIRE.md §1.5): the files of output nodes (SaveImage, SaveVideo, VHS_VideoCombine, …:
ComfyUI's `type: "output"`); temporary previews (PreviewImage: `type: "temp"`) only when the
workflow saved nothing else; or, when the user picked output nodes, exactly theirs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..errors import ExecutionFailed, WorkflowError
from .workflow import Workflow

T = TypeVar("T")
# Nodes whose files are temporary when a back end does not say (ComfyUI's PreviewImage and
# PreviewAudio write to its temp folder; Video Helper Suite's combine with save_output off).
_PREVIEW_CLASS = re.compile(r"^Preview", re.IGNORECASE)


@dataclass(frozen=True)
class Produced(Generic[T]):
    """One file a back end found in its answer: the node that made it ("" when the answer
    does not say), its type when the answer says ("output", "temp"), and the back end's own
    record of it (a URL, a file entry) to fetch it by."""

    node_id: str
    item: T
    type: str = ""

    def temporary(self, workflow: Workflow) -> bool:
        if self.type:
            return self.type == "temp"
        node = workflow.graph.get(self.node_id, {})
        return bool(_PREVIEW_CLASS.search(str(node.get("class_type", ""))))


def results(produced: Sequence[Produced[T]], workflow: Workflow,
            picked: Sequence[str] = ()) -> list[Produced[T]]:
    """The files that come back, in the answer's order. `picked`: output nodes by id or
    title (the user's choice); empty: every saved file, else the previews."""
    if picked:
        wanted = {workflow.node_id(ref) for ref in picked}
        chosen = [p for p in produced if p.node_id in wanted or _inside(p.node_id, wanted)]
        if produced and not chosen:
            made = sorted({f"{p.node_id} ({workflow.title(p.node_id)})" for p in produced})
            raise ExecutionFailed(
                f"The output nodes picked ({', '.join(sorted(wanted))}) saved no file in this "
                f"run; files came from {', '.join(made)}: pick those, or none for every saved "
                "file."
            )
        return chosen
    saved = [p for p in produced if not p.temporary(workflow)]
    return saved or list(produced)


def check_picked(workflow: Workflow, picked: Sequence[str]) -> None:
    """Refuse picked nodes that are not output nodes, before anything is sent."""
    outputs = set(workflow.output_nodes())
    for ref in picked:
        nid = workflow.node_id(ref)
        if nid not in outputs:
            raise WorkflowError(
                f"Node {ref!r} ({workflow.title(nid)}) saves no files: pick one of the output "
                f"nodes {', '.join(f'{n} ({workflow.title(n)})' for n in sorted(outputs))}."
            )


def _inside(node_id: str, wanted: set[str]) -> bool:
    """A node the server expanded ("12:5" inside subgraph 12) counts as its parent."""
    return any(node_id.startswith(f"{w}:") or node_id.startswith(f"{w}.") for w in wanted)
