"""The docker's settings, kept in Krita's own settings file (kritarc).

Nothing here is written into a .kra, so a shared painting never carries a token. Empty
credential fields fall back to the environment and ComfyRelay's credentials file.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from .core import core

GROUP = "ComfyRelay"


class Settings(core.HostSettings):
    """The back end's fields (the core's HostSettings) and the docker's own."""

    workflow: str = ""  # path of the last workflow
    source: str = "canvas"  # canvas or selection
    output_folder: str = ""  # empty: ~/Pictures/ComfyRelay

    def results_dir(self) -> Path:
        """Where result files stay, so a closed document or a crash loses nothing."""
        if self.output_folder:
            return Path(self.output_folder).expanduser()
        return Path.home() / "Pictures" / "ComfyRelay"


def load(krita: Any) -> Settings:
    """kritarc holds text: each value is read back as its field's type, else the default."""
    settings = Settings()
    for name, default in settings.model_dump().items():
        with contextlib.suppress(ValueError):  # e.g. another version's value: keep the default
            setattr(settings, name, krita.readSetting(GROUP, name, str(default)))
    return settings


def save(krita: Any, settings: Settings) -> None:
    for name, value in settings.model_dump().items():
        krita.writeSetting(GROUP, name, str(value))
