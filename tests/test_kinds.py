"""The registry of back-end kinds (core/kinds.py): a kind registered at run time appears in
the CLI, the hosts' settings and make_backend; kinds cannot clash; no host file and no
core/host/ file names a kind; each kind's price model."""

from __future__ import annotations

import argparse
import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import comfyrelay
import pytest
from comfyrelay import (
    KINDS,
    BackendSettings,
    Bindings,
    HostSession,
    HostSettings,
    InputFile,
    Job,
    RunEnded,
    Setting,
    load_credentials,
    make_backend,
)
from comfyrelay.cli.main import build_parser, main
from comfyrelay.comfyicu.icu_backend import ComfyICUBackend
from comfyrelay.comfyui.server_backend import ComfyUIBackend
from comfyrelay.config import Credentials
from comfyrelay.runcomfy.machine import RunComfyMachineBackend
from comfyrelay.runcomfy.serverless import RunComfyServerlessBackend

from tests import extra_kind, workflows
from tests.hosted import TOKENS, isolated, pump_until  # noqa: F401  (isolated: autouse)
from tests.imaging import gradient_png
from tests.paths import ROOT, WORKFLOWS

HOST_CODE = [*ROOT.joinpath("blender_addon").rglob("*.py"),
             *ROOT.joinpath("krita_plugin").rglob("*.py"),
             *ROOT.joinpath("core", "host").rglob("*.py")]


@pytest.fixture
def echo() -> Iterator[str]:
    """The test suite's own kind, registered for one test."""
    KINDS.register(extra_kind.make_kind(comfyrelay))
    try:
        yield extra_kind.NAME
    finally:
        KINDS.unregister(extra_kind.NAME)


def test_a_kind_registered_at_run_time_appears_everywhere(
    echo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    shown = capsys.readouterr().out
    assert re.search(r"--backend \{[^}]*\becho-test\b[^}]*\}", shown), shown
    assert extra_kind.OPTION in shown and "result file name prefix" in shown

    assert KINDS.labels()[echo] == "Echo (test)"
    assert KINDS.kind_fields(echo) == [extra_kind.FIELD]  # what both hosts show for it
    assert HostSettings().value(extra_kind.FIELD) == "echo"  # its default, for the hosts
    chosen = HostSettings(backend=echo, echo_prefix="mine")
    backend = make_backend(chosen.backend_settings(), chosen.credentials())
    assert backend.name == echo and backend.check() == "Echo back end (mine)"

    image = tmp_path / "in.png"
    image.write_bytes(gradient_png())
    out = tmp_path / "out"
    code = main(["run", str(WORKFLOWS / "invert_api.json"), "--backend", echo,
                 extra_kind.OPTION, "cli", "--image", str(image), "--out", str(out)])
    assert code == 0
    assert (out / "cli_in.png").read_bytes() == image.read_bytes()

    session = HostSession()  # the hosts' session runs it like any other
    session.configure(chosen.backend_settings(), chosen.credentials())
    run = session.start_run("echo")
    session.submit(run, Job(workflows.invert(), tmp_path / "host", Bindings(),
                            InputFile("in.png", gradient_png())))
    seen: list[object] = []
    pump_until(session, lambda: session.run is None, seen)
    ended = next(e for e in seen if isinstance(e, RunEnded))
    assert ended.record is not None and ended.record.backend == echo
    assert (tmp_path / "host" / "mine_in.png").is_file()
    session.close()


def test_kinds_cannot_clash(echo: str) -> None:
    kind = extra_kind.make_kind(comfyrelay)
    with pytest.raises(ValueError, match="already registered"):
        KINDS.register(kind)
    type(kind).name = "echo-2"
    type(kind).fields = (Setting("url", "Another URL"),)  # ComfyUI's field key, redefined
    with pytest.raises(ValueError, match="field 'url' clashes"):
        KINDS.register(kind)
    assert "echo-2" not in KINDS


def test_an_unknown_kind_says_which_there_are() -> None:
    with pytest.raises(comfyrelay.ComfyRelayError, match="comfyui, runcomfy-machine"):
        make_backend(BackendSettings("nope"), load_credentials())
    stored = HostSettings(backend="a-kind-of-a-newer-version")  # it falls back, not fails
    assert stored.backend_settings().kind == "comfyui"


def test_no_host_file_names_a_kind() -> None:
    """Hosts and the host session work from the registry: a kind's name in one of their
    strings means a host knows that kind."""
    names = "|".join(re.escape(n) for n in KINDS.names())
    named = re.compile(rf"(?<![\w-])({names}|runcomfy)(?![\w-])")
    found = []
    for path in HOST_CODE:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            # Docstrings count too: no host describes a kind by its name.
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and named.search(node.value)):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    assert found == []


def test_each_kind_says_what_a_job_costs() -> None:
    comfyui = KINDS.get("comfyui")
    assert comfyui.price(comfyui.settings_model()).cost(60) == 0.0  # the user's own GPU
    machine = KINDS.get("runcomfy-machine")
    priced = machine.price(machine.settings_model(hourly_price=1.8))
    assert priced.cost(3600) == pytest.approx(1.8)  # per hour of the machine, the user's
    assert machine.price(machine.settings_model()).cost(60) is None  # unknown: never guessed
    for name in ("runcomfy-serverless", "comfyicu", "comfy-api"):
        kind = KINDS.get(name)
        assert not kind.price(kind.settings_model()).known, name


def test_the_cli_and_the_hosts_list_the_same_kinds() -> None:
    """`run --backend` offers exactly the registered kinds; the hosts' settings hold every
    kind's fields with their defaults, and refuse no stored value a kind gave."""
    parser = build_parser()
    run = next(a for a in parser._subparsers._group_actions
               if isinstance(a, argparse._SubParsersAction)).choices["run"]
    backend = next(a for a in run._actions if a.dest == "backend")
    assert list(backend.choices or []) == list(KINDS.names())
    settings = HostSettings()
    for kind in KINDS:
        assert KINDS.kind_fields(kind.name) == [f.key for f in kind.fields]
        for field in kind.fields:
            assert settings.value(field.key) == field.default, field.key
    with pytest.raises(ValueError, match="hosts' own"):
        kind = extra_kind.make_kind(comfyrelay)
        type(kind).name, type(kind).fields = "echo-3", (Setting("backend", "Backend"),)
        KINDS.register(kind)


def test_make_backend_builds_every_kind() -> None:
    creds = Credentials({"runcomfy_user_id": "user", "runcomfy_api_token": TOKENS[0],
                                "comfyicu_api_key": "icu-key-SECRET"})
    assert isinstance(make_backend(BackendSettings(), creds), ComfyUIBackend)
    built: dict[str, dict[str, Any]] = {
        "runcomfy-machine": {"workflow_version_id": "v", "future_option": 1},
        "runcomfy-serverless": {"deployment_id": "d"},
        "comfyicu": {"workflow_id": "w"},
    }
    backends = {kind: make_backend(BackendSettings.of(kind, **values), creds)
                for kind, values in built.items()}
    assert isinstance(backends["runcomfy-machine"], RunComfyMachineBackend)
    assert isinstance(backends["runcomfy-serverless"], RunComfyServerlessBackend)
    assert isinstance(backends["comfyicu"], ComfyICUBackend)
    with pytest.raises(comfyrelay.ComfyRelayError, match="deployment"):
        make_backend(BackendSettings.of("runcomfy-serverless"), creds)
    with pytest.raises(comfyrelay.ComfyRelayError, match="Unknown back end 'nope'"):
        make_backend(BackendSettings("nope"), creds)
