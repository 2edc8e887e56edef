"""The docker's settings, kept in Krita's own settings file (kritarc).

Nothing here is written into a .kra, so a shared painting never carries a token. Empty
credential fields fall back to the environment and ComfyRelay's credentials file.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from .core import core

GROUP = "ComfyRelay"
KEPT_WORKFLOWS = 50  # whose loader sources are remembered


class Settings(core.HostSettings):
    """The back end's fields (the core's HostSettings) and the docker's own."""

    workflow: str = ""  # path of the last workflow
    source: str = "canvas"  # the region sent: canvas, or selection (its bounds and a margin)
    output_folder: str = ""  # empty: ~/Pictures/ComfyRelay
    # Each workflow's loader sources, as JSON: {workflow path: {node id: source}}.
    loader_sources: str = ""

    def results_dir(self) -> Path:
        """Where result files stay, so a closed document or a crash loses nothing."""
        if self.output_folder:
            return Path(self.output_folder).expanduser()
        return Path.home() / "Pictures" / "ComfyRelay"


    def sources_of(self, path: str) -> dict[str, str]:
        """The sources chosen for the workflow at `path` ({} when none, or unreadable)."""
        kept = self._all_sources().get(path)
        return {str(k): str(v) for k, v in kept.items()} if isinstance(kept, dict) else {}

    def keep_sources(self, path: str, sources: dict[str, str]) -> None:
        """Remember `sources` for `path`, newest last; the oldest go beyond KEPT_WORKFLOWS."""
        kept = self._all_sources()
        kept.pop(path, None)
        kept[path] = sources
        self.loader_sources = json.dumps(dict(list(kept.items())[-KEPT_WORKFLOWS:]))

    def _all_sources(self) -> dict[str, Any]:
        try:
            kept = json.loads(self.loader_sources or "{}")
        except ValueError:  # hand-edited kritarc: start afresh
            return {}
        return kept if isinstance(kept, dict) else {}


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
