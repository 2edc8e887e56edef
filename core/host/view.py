"""What a host shows: one plain snapshot of the session, rebuilt on every pump.

Hosts bind their widgets to these fields (Krita sets labels and enables buttons from them;
Blender's panel draws them), so the two add-ons cannot drift apart on what they show.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class LeftoverRow:
    """A RunComfy machine left running by an earlier session, with its one-line state."""

    server_id: str
    line: str


@dataclass(frozen=True)
class View:
    # The job (or run of jobs)
    status: str = "Idle"
    error: str = ""  # the failure, with what to do
    error_node: str = ""  # "12 (KSampler)": where it failed, when the server said
    progress: float = 0.0  # 0..1 over the whole run
    progress_known: bool = True  # False: the back end reports no progress (show a busy bar)
    node: str = ""  # the node running now, "KSampler (3)"
    step: str = ""  # "step 4/20"
    seed: int | None = None  # the seed in use, a random one included
    # The connection
    connection: str = "Not checked"
    connected: bool | None = None  # None: not checked, or checking
    problem: str = ""  # why the settings give no back end; empty when they do
    # What the back end can do
    previews: bool = True
    cancel_tip: str = ""  # why Cancel is greyed out, when it always is
    # Buttons
    can_run: bool = True
    can_cancel: bool = False
    can_check: bool = True
    # RunComfy machine box: shown while the machine back end is chosen
    machine: bool = False
    machine_lines: tuple[str, ...] = ()
    can_launch: bool = False
    can_stop: bool = False
    can_extend: bool = False
    # Machines left running by earlier sessions
    leftovers: tuple[LeftoverRow, ...] = field(default_factory=tuple)
    leftover_message: str = ""
    can_act_on_leftovers: bool = False

    @property
    def show_leftovers(self) -> bool:
        return bool(self.leftovers or self.leftover_message)
