"""`comfyrelay machines|workflows|deployments` and `run --backend ...` against test servers."""

from __future__ import annotations

import _thread
import argparse
import io
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from comfyrelay.cli.hosted import backend_from_args
from comfyrelay.cli.main import build_parser, main, run_job
from comfyrelay.comfyicu.icu_backend import ComfyICUBackend
from comfyrelay.jobs.job import Job
from comfyrelay.jobs.workflow import Bindings, Workflow
from comfyrelay.runcomfy.ledger import Ledger
from comfyrelay.runcomfy.machine import RunComfyMachineBackend
from comfyrelay.runcomfy.serverless import RunComfyServerlessBackend

from tests.cli.test_main import interrupted_on_server, mid_job, read_rest
from tests.hosted import FAST_MACHINE, ICU_KEY, TOKENS
from tests.runcomfy.test_serverless import CANCELS, SEEDED
from tests.servers.comfyicu import ComfyICUTestServer
from tests.servers.comfyui import ComfyTestServer
from tests.servers.runcomfy import RunComfyTestServer
from tests.workflows import invert, slow


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNCOMFY_USER_ID", "user-0001")
    monkeypatch.setenv("RUNCOMFY_API_TOKEN", TOKENS[0])
    monkeypatch.setenv("COMFYICU_API_KEY", ICU_KEY)


def test_machines_launch_list_extend_status_stop(
    rc: RunComfyTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    api = ["--api-url", rc.url]
    assert main(["workflows", *api]) == 0
    assert "ver-1  Invert" in capsys.readouterr().out
    assert main(["machines", "launch", "--workflow-version", "ver-1", "--minutes", "10",
                 "--wait", *api]) == 0
    sid = capsys.readouterr().out.strip()
    assert sid in rc.machines and Ledger().get(sid) is not None
    # A second launch (a retry, an impatient user) reuses the running machine.
    assert main(["machines", "launch", "--workflow-version", "ver-1", *api]) == 0
    assert capsys.readouterr().out.strip() == sid
    assert len(rc.called("POST", "/servers")) == 1

    assert main(["machines", "list", *api]) == 0
    out = capsys.readouterr().out
    assert sid in out and "Ready" in out and "min left" in out
    assert main(["machines", "extend", sid, "--minutes", "30", *api]) == 0
    assert rc.machines[sid].estimated_duration == 2400
    assert "39 min left" in capsys.readouterr().out
    assert main(["machines", "status", sid, *api]) == 0
    assert "Ready" in capsys.readouterr().out
    assert main(["machines", "stop", sid, *api]) == 0
    assert "stopped" in capsys.readouterr().out
    assert rc.machines[sid].stopped is not None and Ledger().entries() == []
    assert main(["machines", "list", *api]) == 0
    assert "No RunComfy machines" in capsys.readouterr().out


def test_deployments_list_and_show(
    rc: RunComfyTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    dep = rc.add_deployment(invert().graph, name="invert-dep")
    assert main(["deployments", "list", "--api-url", rc.url]) == 0
    assert dep in capsys.readouterr().out
    assert main(["deployments", "show", dep, "--api-url", rc.url]) == 0
    out = capsys.readouterr().out
    assert "invert-dep" in out and "1.image" in out


def test_errors_are_short_and_secret_free(
    rc: RunComfyTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    rc.refused.add(TOKENS[0])
    assert main(["machines", "list", "--api-url", rc.url]) == 1
    err = capsys.readouterr().err
    assert "RUNCOMFY_API_TOKEN" in err and TOKENS[0] not in err


def run_args(*options: str) -> argparse.Namespace:
    """`comfyrelay run` options as the full command parses them."""
    return build_parser().parse_args(["run", "workflow.json", "--out", "out", *options])


def test_run_backend_comfyicu(
    icu: ComfyICUTestServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = run_args(
        "--backend", "comfyicu", "--icu-workflow", "wf-icu", "--accelerator", "T4",
        "--api-url", icu.url + "/api/v1", "--file", "/input/example.png=https://x.test/a.png",
    )
    backend = backend_from_args(args)
    assert isinstance(backend, ComfyICUBackend)
    backend.poll_interval = 0.03
    job = Job(workflow=invert(), out_dir=tmp_path, bindings=Bindings())
    assert run_job(backend, job) == 0
    assert (tmp_path / "inverted_3_00001_.png").exists()


def test_run_backend_runcomfy_machine_stops_what_it_launched(
    rc: RunComfyTestServer, tmp_path: Path
) -> None:
    args = run_args(
        "--backend", "runcomfy-machine", "--workflow-version", "ver-1", "--api-url", rc.url
    )
    backend = backend_from_args(args)
    assert isinstance(backend, RunComfyMachineBackend)
    backend.timing = FAST_MACHINE
    from comfyrelay.jobs.job import InputFile

    from tests.imaging import gradient_png

    job = Job(workflow=invert(), out_dir=tmp_path, image=InputFile("a.png", gradient_png()))
    start = time.monotonic()
    assert run_job(backend, job) == 0
    assert time.monotonic() - start < 10
    (sid,) = rc.machines
    assert rc.machines[sid].stopped is not None and Ledger().entries() == []


def test_tokens_are_not_command_line_options() -> None:
    with pytest.raises(SystemExit):
        run_args("--token", "x")


# ---- RunComfy Serverless as its own clients see it (issue 16) ----


def serverless_args(rc: RunComfyTestServer, dep: str, workflow: Path, out: Path) -> list[str]:
    return ["run", str(workflow), "--out", str(out), "--backend", "runcomfy-serverless",
            "--deployment", dep, "--api-url", rc.url]


def test_run_serverless_failing_at_the_status_says_why_in_seconds(
    rc: RunComfyTestServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`failed` at the status endpoint ends the run at once (not at the 60 min job timeout),
    with RunComfy's own words, readable, on stderr."""
    rc.error_shape = "list"  # [{errorCode, error, debugInfo}] as go-runcomfyserverless has it
    dep = rc.add_deployment(SEEDED)
    workflow = tmp_path / "seeded.json"
    workflow.write_text(json.dumps(SEEDED), encoding="utf-8")
    args = serverless_args(rc, dep, workflow, tmp_path / "out")
    backend = backend_from_args(build_parser().parse_args(args))
    assert isinstance(backend, RunComfyServerlessBackend) and backend.job_timeout == 3600
    backend.close()
    start = time.monotonic()
    assert main([*args, "--set", "2.steps=FAIL"]) == 1
    seconds = time.monotonic() - start
    err = capsys.readouterr().err
    assert seconds < 10, seconds
    assert ("error: RunComfy: the job failed: KSampler node 2: input steps made the node fail "
            "(error code 500; RuntimeError: input steps made the node fail)") in err, err
    assert "[{" not in err and TOKENS[0] not in err


@contextmanager
def ctrl_c_when(done: Callable[[], bool]) -> Iterator[None]:
    """Press Ctrl-C (KeyboardInterrupt in the main thread, where run_job waits) once done()."""
    armed = threading.Event()
    armed.set()

    def watch() -> None:
        while armed.is_set():
            if done():
                _thread.interrupt_main()
                return
            time.sleep(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        armed.clear()
        watcher.join(5)


@pytest.mark.parametrize("case", list(CANCELS))
def test_run_serverless_ctrl_c_prints_what_runcomfy_answered(
    rc: RunComfyTestServer, tmp_path: Path, case: str
) -> None:
    setup, poll, cancel_when, said = CANCELS[case]
    setup(rc)
    rc.run_time = 1.0 if cancel_when == "completed" else 3.0
    dep = rc.add_deployment(SEEDED)
    backend = backend_from_args(run_args("--backend", "runcomfy-serverless", "--deployment", dep,
                                         "--api-url", rc.url))
    assert isinstance(backend, RunComfyServerlessBackend)
    backend.poll_interval = poll
    err = io.StringIO()
    job = Job(workflow=Workflow(SEEDED), out_dir=tmp_path, bindings=Bindings())
    with ctrl_c_when(lambda: any(r.state == cancel_when for r in list(rc.inference.values()))):
        code = run_job(backend, job, err)
    lines = err.getvalue().splitlines()
    assert code == 130 and "Cancelling…" in lines, lines
    assert lines[-1].startswith(said), lines  # instead of a bare "Cancelled."
    assert len(rc.called("POST", "/cancel")) == 1


# ---- signals on a RunComfy machine run (issue 24) ----


@pytest.mark.parametrize(
    ("signum", "options", "code", "stopped"),
    [(signal.SIGTERM, (), 143, True), (signal.SIGHUP, ("--keep-machine",), 129, False)],
    ids=["SIGTERM: the machine launched here is stopped", "SIGHUP with --keep-machine"],
)
def test_a_signal_mid_job_on_a_runcomfy_machine_names_the_machine(
    rc: RunComfyTestServer, comfy: ComfyTestServer, tmp_path: Path, signum: int,
    options: tuple[str, ...], code: int, stopped: bool,
) -> None:
    """SIGTERM or SIGHUP during a job on a RunComfy machine: the job is cancelled on the
    machine's ComfyUI, and the last line names the machine, stopped (billing ended) or left
    running with the command that stops it."""
    comfy.node_delay = 0.5
    workflow = tmp_path / "slow.json"
    workflow.write_text(json.dumps(slow().graph), encoding="utf-8")
    command = [sys.executable, "-m", "comfyrelay", "run", str(workflow), "--backend",
               "runcomfy-machine", "--workflow-version", "ver-1", "--api-url", rc.url,
               "--out", str(tmp_path / "out"), *options]
    with mid_job(command) as (proc, seen):
        proc.send_signal(signum)
        rest = read_rest(proc)
    (sid,) = rc.machines
    assert proc.returncode == code, (seen, rest)
    assert interrupted_on_server(comfy)
    assert "Cancelled." in rest, rest
    if stopped:
        assert rest[-1] == f"RunComfy machine {sid} is stopped; its billing has ended.", rest
        assert rc.machines[sid].stopped is not None and Ledger().entries() == []
    else:
        assert rest[-1].startswith(f"RunComfy machine {sid} is still running and billing "
                                   f"(Ready): stop it with `comfyrelay machines stop {sid}`; "
                                   "otherwise RunComfy stops it in "), rest
        assert rc.machines[sid].stopped is None and Ledger().get(sid) is not None


def test_ctrl_c_while_machines_launch_waits_names_the_machine_left_starting(
    rc: RunComfyTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """`machines launch --wait` stopped while the machine starts: it is not stopped (the
    user asked for it), and stderr says which machine bills and how to stop it."""
    rc.ready_delay = 60.0  # it stays Starting for the whole test
    # Ctrl-C once the launch is known to the ledger: between RunComfy's answer and the
    # ledger's write, a Ctrl-C leaves a machine only RunComfy's list (and the message) names.
    with ctrl_c_when(lambda: bool(rc.machines) and bool(Ledger().entries())):
        code = main(["machines", "launch", "--workflow-version", "ver-1", "--wait",
                     "--api-url", rc.url])
    (sid,) = rc.machines
    err = capsys.readouterr().err.splitlines()
    assert code == 130, err
    assert f"RunComfy machine {sid} is still running and billing" in err[-2], err
    assert f"`comfyrelay machines stop {sid}`" in err[-2] and err[-1] == "Stopped (Ctrl-C).", err
    assert rc.machines[sid].stopped is None and Ledger().get(sid) is not None
