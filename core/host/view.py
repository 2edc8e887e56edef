"""What a host shows: one plain snapshot of the session, rebuilt on every pump.

Hosts bind their widgets to these fields (Krita sets labels and enables buttons from them;
Blender's panel draws them), so the two add-ons cannot drift apart on what they show. A
kind's own box comes as a ControlsView: hosts draw its lines and buttons without knowing
the kind.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..jobs.backend_kind import ControlsView
from .status import NOT_CHECKED, Status


@dataclass(frozen=True)
class View:
    # The workflow and its run (or run of jobs)
    status: str = str(Status.NO_WORKFLOW)  # the one status line: `state`, and what about
    state: Status = Status.NO_WORKFLOW  # the status line's word (README, "The status line")
    attention: str = ""  # "1 input needs attention: Checkpoint — the server has no checkpoints"
    error: str = ""  # the failure, with what to do
    error_node: str = ""  # "12 (KSampler)": where it failed, when the server said
    progress: float = 0.0  # 0..1 over the whole run
    progress_shown: bool = False  # False: the bar empty and quiet (nothing ran here yet)
    progress_known: bool = True  # False: the back end reports no progress (show a busy bar)
    node: str = ""  # the node running now, "KSampler (3)"
    step: str = ""  # "step 4/20"
    seed: int | None = None  # the seed in use, a random one included
    # The connection
    connection: str = NOT_CHECKED  # plain: "Connected to ComfyUI 0.3.64 — ready."
    connection_details: str = ""  # what the server lacks and what is done instead; "": none
    connected: bool | None = None  # None: not checked, or checking
    problem: str = ""  # why the settings give no back end; empty when they do
    # What the back end can do
    previews: bool = True
    cancel_tip: str = ""  # why Cancel is greyed out, when it always is
    # Buttons
    can_run: bool = False  # False whenever run_tip says why
    run_tip: str = "Choose a workflow first."  # why Run is disabled; "" when it is enabled
    can_rerun: bool = False  # Run Again (a past run's workflow and values): no flags stop it
    rerun_tip: str = "Choose a back end."  # why Run Again is disabled; "" when it is enabled
    can_cancel: bool = False
    can_check: bool = True
    # Each back-end kind's own box (a machine's state and buttons) while it is chosen, and
    # what its start-up scan found (machines left running) whichever is chosen.
    controls: tuple[ControlsView, ...] = ()
