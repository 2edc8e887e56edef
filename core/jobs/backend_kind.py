"""What a back-end kind says about itself, so nothing above it needs to know it by name.

A kind (ComfyUI, a RunComfy machine, ...) is one `BackendKind` object in its own folder
(`core/<service>/kind.py`): its name and label, its settings model, the fields a host shows
for it, the credentials it reads, its command-line options, its price model, how to build
its back end and, optionally, the `Controls` a host shows for it (a machine's Launch / Stop).
`core/kinds.py` lists them; hosts, the CLI and the session work from that list alone.
"""

from __future__ import annotations

import argparse
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from ..config import Credential, Credentials
from .backend_api import Backend, Capabilities


class KindSettings(BaseModel):
    """A kind's own settings: no secrets (they come as Credentials)."""

    model_config = ConfigDict(extra="ignore")  # settings saved by a newer version still load


S = TypeVar("S", bound=KindSettings)
FieldValue = str | int | float


@dataclass(frozen=True)
class Setting:
    """One field a host shows for a kind (the one field table both hosts build from).

    `key` is the name hosts store it under (Blender's preferences, Krita's kritarc): it never
    changes, so settings saved by an earlier version load. A `credential` field is a secret
    typed in the host; empty, it falls back to the environment and the credentials file."""

    key: str
    label: str
    default: FieldValue = ""
    hint: str = ""  # placeholder or tooltip
    credential: str = ""  # the Credential.name this field types in
    choices: tuple[tuple[str, str], ...] = ()  # (value, label); empty: free text or number
    low: float = 0.0  # numbers: the smallest value; `special` is shown for it
    special: str = ""

    @property
    def secret(self) -> bool:
        return bool(self.credential)

    def coerce(self, value: Any) -> FieldValue:
        """`value` as this field's type (hosts may store text); ValueError if it is not."""
        if isinstance(self.default, bool) or not isinstance(self.default, (int, float)):
            text = "" if value is None else str(value)
            if self.choices and text not in {v for v, _ in self.choices}:
                return self.default  # a choice this version no longer offers
            return text
        if isinstance(self.default, int):
            return int(float(value))
        return float(value)


@dataclass(frozen=True)
class CliOption:
    """One option of `comfyrelay run` for a kind. Kinds may share an option (--api-url):
    the CLI adds each flag once."""

    flag: str  # "--deployment"
    help: str
    dest: str = ""  # default: from the flag
    default: Any = None
    type: Any = None  # str when None
    choices: tuple[str, ...] | None = None
    action: str = ""  # "store_true", "append"
    metavar: str | None = None

    @property
    def name(self) -> str:
        return self.dest or self.flag.lstrip("-").replace("-", "_")

    def add_to(self, group: Any) -> None:
        """Add to an argparse parser or argument group."""
        extra: dict[str, Any] = {"help": self.help, "dest": self.name, "default": self.default}
        if self.action:
            extra["action"] = self.action
        else:
            extra.update(type=self.type or str, choices=self.choices, metavar=self.metavar)
        if self.action == "append" and self.metavar:
            extra["metavar"] = self.metavar
        group.add_argument(self.flag, **extra)


@dataclass(frozen=True)
class Price:
    """What a back end bills, for estimates before a run and costs after it.

    `per_second` while a job runs (or the machine is up); None: unknown (never guessed).
    `startup_seconds` are billed before the first job (a machine's or instance's start)."""

    per_second: float | None
    startup_seconds: float = 0.0
    basis: str = ""  # how it is billed, in words: "per hour of the machine, your price"
    # True: billed while the machine is up (the run's whole time), not per job's seconds.
    while_up: bool = False

    @property
    def known(self) -> bool:
        return self.per_second is not None

    def cost(self, seconds: float, *, starts: int = 0) -> float | None:
        """The cost of `seconds` of work and `starts` cold starts; None when unknown."""
        if self.per_second is None:
            return None
        return self.per_second * (seconds + starts * self.startup_seconds)


# The option every hosted kind shares: a service's other API (RunComfy's beta, a Comfy API
# deployment or a local comfy-api-proxy, a test server).
API_URL_OPTION = CliOption(
    "--api-url", "hosted API base URL (default: the service's own; RunComfy also has "
    "https://beta-api.runcomfy.net; comfy-api: a deployment's or a local comfy-api-proxy's URL)")

FREE = Price(0.0, basis="nothing billed that ComfyRelay knows of")
UNKNOWN = Price(None, basis="no price known")


@dataclass(frozen=True)
class Button:
    """A kind's action a host shows as a button: `action` (and `target`, a thing found)
    go back to HostSession.act()."""

    kind: str
    action: str
    label: str
    tip: str = ""
    enabled: bool = True
    target: str = ""


@dataclass(frozen=True)
class Found:
    """A thing a kind's scan found (a machine left running, billing), with its buttons."""

    target: str
    line: str
    buttons: tuple[Button, ...] = ()


@dataclass(frozen=True)
class ControlsView:
    """What a kind's Controls show: a box while the kind is chosen (`lines`, `buttons`), and
    what its start-up scan found (shown whichever kind is chosen)."""

    title: str = ""  # the box's title; empty: no box
    lines: tuple[str, ...] = ()
    buttons: tuple[Button, ...] = ()
    found_title: str = ""
    found: tuple[Found, ...] = ()
    found_message: str = ""
    # A look for what earlier sessions left running suits the chosen back end: a host offers
    # it (HostSession.scan_leftovers) with this as its tooltip; empty: it does not.
    scan_tip: str = ""


class After(Enum):
    """What the session does after a kind's action (Controls.act)."""

    NOTHING = "nothing"
    REBUILD = "rebuild"  # build the back end again (through Controls.adjust)
    CHOOSE = "choose"  # this kind becomes the chosen one, then REBUILD (Reuse a machine)


class Controls(ABC):
    """A kind's own part of a host's panel, beside runs: e.g. a RunComfy machine's state
    with Launch / Stop / +30 min, and machines left running by earlier sessions.

    Owned by the host's UI thread (through the session): every method returns at once;
    network work runs on the controls' own threads."""

    @abstractmethod
    def bind(self, backend: Backend | None, chosen: str, problem: str) -> None:
        """The session's back end now: `backend` (None: none built; `problem` says why), of
        the kind named `chosen`."""

    @abstractmethod
    def view(self) -> ControlsView:
        """The current state, from memory (no network)."""

    @abstractmethod
    def act(self, action: str, target: str = "", *, busy: bool = False) -> After:
        """Do `action` (on `target`); `busy`: a run is under way. Raise ComfyRelayError for
        what cannot be done now, saying why."""

    @property
    def working(self) -> bool:
        """An action is under way (a launch, a stop): the back end must not be replaced."""
        return False

    @property
    def active(self) -> bool:
        """Something shown changes by itself (a machine's time left): keep the host's timer."""
        return False

    def adjust(self, settings: KindSettings) -> KindSettings:
        """The settings to build the next back end from (e.g. the machine chosen for reuse)."""
        return settings

    def cost(self) -> float | None:
        """Money spent so far by the bound back end, when known (a run's history entry)."""
        return None

    def estimate(self, jobs: int) -> float | None:
        """What `jobs` jobs were expected to cost here before they ran, when known (shown
        beside the cost in a run's history entry)."""
        return None

    def scan(self, settings: KindSettings, credentials: Credentials) -> bool:
        """Look for what earlier sessions left running (at start-up), in the background;
        False when there are no credentials to ask with."""
        return False

    def wait(self, timeout: float) -> None:  # noqa: B027 - nothing to wait for by default
        """Wait for the action under way (scripts and tests; never from a UI)."""

    def close(self) -> None:  # noqa: B027 - nothing to release by default
        """The host quits."""


class BackendKind(ABC, Generic[S]):
    """One kind of back end. Subclasses fill in the class attributes and build()."""

    name: str  # "comfyui": settings, `--backend`, history entries
    label: str  # "ComfyUI": what a user reads
    settings_model: type[S]
    fields: tuple[Setting, ...] = ()  # what the hosts show, in order
    credentials: tuple[Credential, ...] = ()  # what it reads, by name
    cli_options: tuple[CliOption, ...] = ()
    capabilities: Capabilities = Capabilities()
    tunable: frozenset[str] = frozenset()  # settings tune() applies to a live back end

    @abstractmethod
    def from_fields(self, values: Mapping[str, Any]) -> S:
        """The settings from a host's field values (every field's key present)."""

    @abstractmethod
    def from_args(self, args: argparse.Namespace) -> S:
        """The settings from `comfyrelay run`'s options."""

    @abstractmethod
    def build(self, settings: S, credentials: Credentials, config: Path | None) -> Backend:
        """The back end, configured; raise ComfyRelayError saying what is missing.
        `config`: the folder for its own files (a ledger), None for the user's."""

    def price(self, settings: S) -> Price:
        """What a job costs here; UNKNOWN unless the kind knows."""
        return UNKNOWN

    def tune(self, backend: Backend, settings: S) -> None:
        """Apply the `tunable` settings to a live back end (rebuilding it would stop a
        machine that bills)."""

    def controls(self, config: Path | None) -> Controls | None:
        """A new Controls for a host session, if the kind has any (`config` as in build)."""
        return None

    def pool_workers(self, settings: S, slots: int, keep: bool) -> list[tuple[S, int]]:
        """How one pool file entry runs: (settings, slots) per worker. By default one worker
        with the entry's slots; a kind whose slot is a machine of its own (a RunComfy
        machine) gives one worker per slot. `keep`: the run's --keep-machine."""
        return [(settings, slots)]
