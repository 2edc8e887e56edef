"""The back-end settings a host shows and stores: the chosen kind and every kind's fields,
flat, by the keys the kinds declare (core/kinds.py lists the kinds).

Both hosts build their settings UI from the registry's fields, so they offer the same choices
with the same labels. Hosts store these values in their own settings (Krita's kritarc,
Blender's preferences), never in a document; empty secrets fall back to the environment and
the credentials file.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from ..config import Credentials
from ..kinds import DEFAULT_KIND, KINDS, BackendSettings, load_credentials


class HostSettings(BaseModel):
    """What the settings UI holds: `backend` (a kind's name) and, as attributes, every
    registered kind's fields by key (`settings.url`, `settings.rc_deployment`), each of its
    field's type. A kind registered later gets its defaults on the next HostSettings."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    backend: str = DEFAULT_KIND

    @model_validator(mode="before")
    @classmethod
    def _every_field(cls, data: Any) -> Any:
        """Fill in every kind's defaults and coerce stored text to each field's type."""
        given = dict(data) if isinstance(data, dict) else {}
        fields = KINDS.fields()
        for key, setting in fields.items():
            given[key] = setting.coerce(given[key]) if key in given else setting.default
        return given

    def __setattr__(self, name: str, value: Any) -> None:
        setting = KINDS.fields().get(name)
        super().__setattr__(name, setting.coerce(value) if setting is not None else value)

    def value(self, key: str) -> Any:
        return getattr(self, key)

    @property
    def chosen(self) -> str:
        """The chosen kind, or the default one for a kind this version does not know."""
        return self.backend if self.backend in KINDS else DEFAULT_KIND

    def credentials(self) -> Credentials:
        """The secrets typed here; empty ones from the environment or the credentials file."""
        typed = {s.credential: str(self.value(s.key)) for s in KINDS.fields().values()
                 if s.credential}
        return load_credentials().overridden(typed, KINDS.credentials())

    def backend_settings(self, kind: str | None = None) -> BackendSettings:
        """The core's settings for make_backend() (no secrets in them): of the chosen kind,
        or of `kind`."""
        name = kind or self.chosen
        values = {key: self.value(key) for key in KINDS.fields()}
        return BackendSettings(name, KINDS.get(name).from_fields(values))
