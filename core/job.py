"""A job: one workflow run with its bindings, its input image and where its results go."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .workflow import Bindings, Workflow


@dataclass(frozen=True)
class InputFile:
    """Bytes the host hands over (a render, a canvas); `name` is a suggested file name."""

    name: str
    data: bytes = field(repr=False)

    @classmethod
    def from_path(cls, path: Path | str) -> InputFile:
        path = Path(path)
        return cls(name=path.name, data=path.read_bytes())


@dataclass
class Job:
    workflow: Workflow
    out_dir: Path
    bindings: Bindings = field(default_factory=Bindings)
    image: InputFile | None = None
    label: str = ""  # shown by hosts, e.g. "frame 12"
