"""A back-end kind the test suite registers at run time, to prove that a kind is its own
module plus one registration: it must then appear in `comfyrelay run --help`, in both hosts'
settings fields and build through make_backend, with no product file edited for it.

`make_kind(core)` takes the core package it registers into (the test venv's `comfyrelay`, or
the copy a built Blender or Krita add-on carries), so the same kind serves every host.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

NAME = "echo-test"
FIELD = "echo_prefix"
OPTION = "--echo-prefix"


def make_kind(core: ModuleType) -> Any:
    """An "echo" kind: each job's input image comes back as its result, under a prefix."""

    class EchoSettings(core.KindSettings):  # type: ignore[name-defined]
        prefix: str = "echo"

    class EchoBackend(core.Backend):  # type: ignore[name-defined]
        name = NAME

        def __init__(self, prefix: str) -> None:
            self.prefix = prefix

        def check(self) -> str:
            return f"Echo back end ({self.prefix})"

        def start(self, job: Any, ctx: Any) -> Any:
            ctx.raise_if_cancelled()
            return job

        def finish(self, job: Any, ctx: Any) -> list[Path]:
            media = job.all_media()
            if not media:
                raise core.WorkflowError("The echo back end needs an input image.")
            job.out_dir.mkdir(parents=True, exist_ok=True)
            path = job.out_dir / f"{self.prefix}_{Path(media[0].file.name).name}"
            path.write_bytes(media[0].file.read())
            ctx.emit(core.JobOutput(ctx.job_id, path))
            return [path]

    class EchoKind(core.BackendKind):  # type: ignore[name-defined]
        name = NAME
        label = "Echo (test)"
        settings_model = EchoSettings
        fields = (core.Setting(FIELD, "Prefix", "echo", "result file names start with it"),)
        cli_options = (core.CliOption(OPTION, f"{NAME}: result file name prefix"),)

        def from_fields(self, values: Mapping[str, Any]) -> Any:
            return EchoSettings(prefix=str(values[FIELD]) or "echo")

        def from_args(self, args: argparse.Namespace) -> Any:
            return EchoSettings(prefix=args.echo_prefix or "echo")

        def build(self, settings: Any, credentials: Any, config: Path | None) -> Any:
            return EchoBackend(settings.prefix)

    return EchoKind()
