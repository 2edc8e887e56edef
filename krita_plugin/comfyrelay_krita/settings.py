"""Back-end and docker settings, kept in Krita's own settings file (kritarc).

Nothing here is written into a .kra, so a shared painting never carries a token.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

GROUP = "ComfyRelay"
TOKEN_ENV = "COMFYUI_TOKEN"


@dataclass
class Settings:
    url: str = "http://127.0.0.1:8188"
    token: str = ""  # empty: take COMFYUI_TOKEN from the environment
    workflow: str = ""  # path of the last API-format workflow
    source: str = "canvas"  # canvas or selection
    output_folder: str = ""  # empty: ~/Pictures/ComfyRelay

    def effective_token(self) -> str | None:
        return self.token or os.environ.get(TOKEN_ENV) or None

    def results_dir(self) -> Path:
        """Where result files stay, so a closed document or a crash loses nothing."""
        if self.output_folder:
            return Path(self.output_folder).expanduser()
        return Path.home() / "Pictures" / "ComfyRelay"


def load(krita: Any) -> Settings:
    defaults = Settings()
    values = {
        f.name: str(krita.readSetting(GROUP, f.name, getattr(defaults, f.name)))
        for f in fields(Settings)
    }
    return Settings(**values)


def save(krita: Any, settings: Settings) -> None:
    for f in fields(Settings):
        krita.writeSetting(GROUP, f.name, str(getattr(settings, f.name)))
