"""The back-end kinds ComfyRelay knows, and everything derived from that one list: building
a back end from its settings, when a live back end must be rebuilt, the credentials read from
the environment and the credentials file, the fields both hosts show, the CLI's options.

Adding a back end is its folder (its `kind.py`) and one line in KINDS below; a test suite may
register more at run time (KINDS.register) and they appear everywhere the same way.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .comfyapi.kind import KIND as COMFY_API
from .comfyicu.kind import KIND as COMFYICU
from .comfyui.kind import KIND as COMFYUI
from .config import Credential, Credentials, read_credentials
from .errors import ComfyRelayError
from .jobs.backend_api import Backend
from .jobs.backend_kind import BackendKind, CliOption, KindSettings, Setting
from .pool.kind import PoolKind
from .runcomfy.machine_kind import KIND as RUNCOMFY_MACHINE
from .runcomfy.serverless_kind import KIND as RUNCOMFY_SERVERLESS

AnyKind = BackendKind[Any]
# Keys hosts store beside the kinds' fields (the chosen kind): no kind's field may take one.
RESERVED_KEYS = frozenset({"backend"})


class KindRegistry:
    """The kinds, in the order hosts list them. Registering happens at import (and in tests);
    afterwards every thread only reads it."""

    def __init__(self) -> None:
        self._kinds: dict[str, AnyKind] = {}

    def register(self, kind: AnyKind) -> None:
        """Add a kind; raises ValueError when it clashes with one already known: its name,
        a host field key or a CLI flag that another kind defines differently (kinds may
        share a field or an option only as the same object)."""
        if kind.name in self._kinds:
            raise ValueError(f"A back-end kind named {kind.name!r} is already registered.")
        known = self.fields()
        for setting in kind.fields:
            if setting.key in RESERVED_KEYS:
                raise ValueError(f"{kind.name}: field key {setting.key!r} is the hosts' own.")
            if known.get(setting.key, setting) != setting:
                raise ValueError(f"{kind.name}: field {setting.key!r} clashes with another "
                                 "kind's field of that name.")
        options = {o.flag: o for o in self.cli_options()}
        for option in kind.cli_options:
            if options.get(option.flag, option) != option:
                raise ValueError(f"{kind.name}: option {option.flag} clashes with another "
                                 "kind's option of that name.")
        self._kinds[kind.name] = kind

    def unregister(self, name: str) -> None:
        """Remove a kind registered at run time (a test's)."""
        self._kinds.pop(name, None)

    def __iter__(self) -> Iterator[AnyKind]:
        return iter(list(self._kinds.values()))

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    def get(self, name: str) -> AnyKind:
        try:
            return self._kinds[name]
        except KeyError:
            raise ComfyRelayError(f"Unknown back end {name!r}; choose one of "
                                  f"{', '.join(self.names())}.") from None

    def names(self) -> tuple[str, ...]:
        return tuple(self._kinds)

    def labels(self) -> dict[str, str]:
        """Each kind's name with what a user reads for it."""
        return {k.name: k.label for k in self}

    def fields(self) -> dict[str, Setting]:
        """Every host field of every kind, by key (a field two kinds share, once)."""
        return {s.key: s for k in self for s in k.fields}

    def kind_fields(self, name: str) -> list[str]:
        """The keys of the fields a host shows while `name` is chosen, in order."""
        return [s.key for s in self.get(name).fields]

    def credentials(self) -> tuple[Credential, ...]:
        """Every credential any kind reads, once."""
        return tuple({c.name: c for k in self for c in k.credentials}.values())

    def credential_env(self, name: str) -> str:
        """The environment variable of credential `name` ("" for none or "")."""
        return next((c.env for c in self.credentials() if c.name == name), "")

    def cli_options(self) -> tuple[CliOption, ...]:
        """Every kind's `run` option, each flag once."""
        return tuple({o.flag: o for k in self for o in k.cli_options}.values())


KINDS = KindRegistry()
for _kind in (COMFYUI, RUNCOMFY_MACHINE, RUNCOMFY_SERVERLESS, COMFYICU, COMFY_API,
              PoolKind(lambda: KINDS)):  # the pool builds its workers through this registry
    KINDS.register(_kind)
DEFAULT_KIND = COMFYUI.name


@dataclass(frozen=True)
class BackendSettings:
    """A back end to build: its kind and that kind's settings (never a secret)."""

    kind: str = DEFAULT_KIND
    settings: KindSettings = field(default_factory=COMFYUI.settings_model)

    @classmethod
    def of(cls, kind: str, **values: Any) -> BackendSettings:
        """`kind` with `values` for its settings model (the rest its defaults)."""
        return cls(kind, KINDS.get(kind).settings_model.model_validate(values))

    def updated(self, **values: Any) -> BackendSettings:
        """The same kind with some settings changed."""
        return BackendSettings(self.kind, self.settings.model_copy(update=values))


def make_backend(choice: BackendSettings, credentials: Credentials, *,
                 config: Path | None = None) -> Backend:
    """The back end `choice` describes; raises ComfyRelayError saying what is missing.
    `config`: where its files go (a machine ledger), None for the user's config folder."""
    return KINDS.get(choice.kind).build(choice.settings, credentials, config)


def rebuild_key(choice: BackendSettings, credentials: Credentials) -> tuple[Any, ...]:
    """What needs a new back end when it changes: the kind, its settings less the ones it
    tunes live, and the credentials it reads. Other kinds' settings and secrets do not."""
    kind = KINDS.get(choice.kind)
    return (kind.name, choice.settings.model_dump_json(exclude=set(kind.tunable)),
            credentials.of(kind.credentials))


def load_credentials(env: Mapping[str, str] | None = None) -> Credentials:
    """Every kind's credentials: the environment first, then the credentials file."""
    return read_credentials(KINDS.credentials(), env)
