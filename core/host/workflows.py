"""The workflows a host session opens: read at once, converted from UI format and typed from
the server's node definitions on a thread of their own, and kept until their file changes."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from pathlib import Path

from ..comfyui.convert import conversion_defs, to_api
from ..comfyui.fields import check_values, server_defs, typed_inputs
from ..comfyui.nodes import NodeDefs
from ..errors import ComfyRelayError, WorkflowError
from ..jobs import loaders
from ..jobs.backend_api import ComfyUIServer
from ..jobs.job import Job, MediaInput
from ..jobs.workflow import Bindings, Workflow, ui_needs_server
from ..jobs.workflow_file import WorkflowSource, read_workflow_file
from .runs import WorkflowOpened

log = logging.getLogger(__name__)
BEING_CONVERTED = ("The workflow is being converted with the server's node definitions: "
                   "press Run again once its inputs are listed.")


class WorkflowOpener:
    """Owned by the UI thread; only the conversion threads' answers cross over (a queue)."""

    def __init__(self) -> None:
        # From the conversion threads: the server asked, the file's mtime, the answer.
        self._opened: queue.Queue[tuple[ComfyUIServer, float, WorkflowOpened]] = queue.Queue()
        self._converted: dict[str, tuple[float, Workflow]] = {}  # path -> (mtime, workflow)
        # (path, server) of each thread under way: one per path and server, so a changed
        # server still gets its own.
        self._converting: set[tuple[str, ComfyUIServer]] = set()
        self.defs: NodeDefs | None = None  # the server's node definitions, once known

    def forget(self) -> None:
        """Another back end: its server may know other nodes."""
        self._converted.clear()
        self.defs = None

    def open(self, path: str, server: ComfyUIServer | None, refresh: bool) -> Workflow | None:
        """See HostSession.open_workflow()."""
        stamp = _mtime(path)  # before the read: a file saved meanwhile is read again
        source = read_workflow_file(path)
        api = Workflow(source.prompt, source.name) if source.prompt is not None else None
        if server is None:
            if api is None:
                raise WorkflowError(ui_needs_server(source.name))
            return api
        if (path, server) not in self._converting:
            self._converting.add((path, server))
            threading.Thread(
                target=self._open, args=(path, stamp, source, api, server, refresh),
                name="comfyrelay-open", daemon=True,
            ).start()
        return api

    def _open(self, path: str, stamp: float, source: WorkflowSource, api: Workflow | None,
              server: ComfyUIServer, refresh: bool) -> None:
        """A conversion thread: the workflow with its inputs typed, or the error."""
        try:
            workflow, defs = _with_defs(source, api, server, refresh)
            event = WorkflowOpened(path, workflow, tuple(typed_inputs(workflow, defs)), defs=defs)
        except ComfyRelayError as exc:
            event = WorkflowOpened(path, error=str(exc))
        except Exception as exc:  # a bug must still end the conversion, and reach the user
            log.exception("opening %s failed", path)
            event = WorkflowOpened(path, error=f"Unexpected error: {type(exc).__name__}: {exc}")
        self._opened.put((server, stamp, event))

    def answers(self) -> list[WorkflowOpened]:
        """The conversions that ended since the last call, now kept (UI thread)."""
        done = []
        while not self._opened.empty():
            server, stamp, opened = self._opened.get()
            self._converting.discard((opened.path, server))
            if opened.workflow is not None:
                self._converted[opened.path] = (stamp, opened.workflow)
            if opened.defs is not None:
                self.defs = opened.defs
            done.append(opened)
        return done

    @property
    def converting(self) -> int:
        return len(self._converting)

    def is_converting(self, path: str) -> bool:
        return any(p == path for p, _ in self._converting)

    def workflow(self, path: str) -> Workflow | None:
        """See HostSession.workflow()."""
        mtime, opened = self._converted.get(path, (None, None))
        if opened is not None and mtime == _mtime(path):
            return opened
        source = read_workflow_file(path)
        if source.prompt is not None:
            return Workflow(source.prompt, source.name)
        if self.is_converting(path):
            raise WorkflowError(BEING_CONVERTED)
        return None

    def check_values(self, workflow: Workflow, bindings: Bindings,
                     media: Sequence[MediaInput] | None = None) -> None:
        """See HostSession.check_values()."""
        if media is None:
            workflow.check(bindings)
            bound = None
        else:
            loaders.check(Job(workflow, Path(), bindings, media=tuple(media)))
            bound = set(loaders.assign(workflow, media))
        if self.defs is not None:
            check_values(workflow, bindings, self.defs, bound=bound)


def _with_defs(source: WorkflowSource, api: Workflow | None, server: ComfyUIServer,
               refresh: bool) -> tuple[Workflow, NodeDefs | None]:
    """The workflow and the server's node definitions, fetched first (again on `refresh`):
    a UI-format file is converted with the same ones its fields are typed from."""
    if api is not None:
        return api, server_defs(server, refresh=refresh)  # None: plain fields
    assert source.workflow is not None  # a file holds one or the other
    defs = conversion_defs(server.url, token=server.token, refresh=refresh)
    return Workflow(to_api(source.workflow, defs), source.name), defs


def _mtime(path: str) -> float:
    try:
        return Path(path).stat().st_mtime
    except OSError:
        return -1.0
