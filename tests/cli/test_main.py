"""The `comfyrelay` command as a user runs it."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import tomllib
from comfyrelay.cli import signals
from comfyrelay.cli.main import main

from tests import workflows
from tests.hosted import wait_for
from tests.imaging import gradient_png, is_inverse
from tests.paths import ROOT, WORKFLOWS
from tests.servers.comfyui import ComfyTestServer


def comfyrelay(
    *args: str | Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "comfyrelay", *map(str, args)]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


def test_run_inverts_a_4k_png(comfy_server: ComfyTestServer, tmp_path: Path) -> None:
    source = tmp_path / "render.png"
    png = gradient_png(3840, 2160)
    source.write_bytes(png)
    result = comfyrelay(
        "run",
        WORKFLOWS / "invert_api.json",
        "--server",
        comfy_server.url,
        "--image",
        source,
        "--out",
        tmp_path / "out",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and Path(lines[0]).is_file()
    assert Path(lines[0]).parent == (tmp_path / "out").resolve()
    assert is_inverse(png, Path(lines[0]))
    assert "Done" in result.stderr


def test_run_without_out_saves_under_comfyrelay_output(
    comfy_server: ComfyTestServer, tmp_path: Path
) -> None:
    """No --out: the files go to ./comfyrelay-output/<workflow name>/, and stderr says so."""
    source = tmp_path / "render.png"
    source.write_bytes(gradient_png())
    command = [sys.executable, "-m", "comfyrelay", "run", str(WORKFLOWS / "invert_api.json"),
               "--server", comfy_server.url, "--image", str(source)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "comfyrelay-output" / "invert_api"
    (saved,) = map(Path, result.stdout.splitlines())
    assert saved.parent == folder.resolve() and saved.is_file()
    assert f"Saving to comfyrelay-output{os.sep}invert_api{os.sep} (no --out given)" in (
        result.stderr.splitlines()), result.stderr


def test_run_with_sets_and_a_failing_node(comfy_server: ComfyTestServer, tmp_path: Path) -> None:
    wf = tmp_path / "failing.json"
    wf.write_text(json.dumps(workflows.failing().graph))
    source = tmp_path / "in.png"
    source.write_bytes(gradient_png())
    result = comfyrelay(
        "run",
        wf,
        "--server",
        comfy_server.url,
        "--image",
        source,
        "--set",
        "Save.filename_prefix=mine",
        "--out",
        tmp_path / "out",
    )
    assert result.returncode == 1
    assert "Node 4 'Alpha' (ImageToMask) failed" in result.stderr
    assert result.stdout == ""
    assert comfy_server.prompts[0]["prompt"]["3"]["inputs"]["filename_prefix"] == "mine"


def test_run_refuses_ui_format_and_bad_sets_before_connecting(tmp_path: Path) -> None:
    nowhere = "http://127.0.0.1:9"
    ui = comfyrelay("run", WORKFLOWS / "invert_ui.json", "--server", nowhere, "--out", tmp_path)
    assert ui.returncode == 1 and "Export (API)" in ui.stderr
    bad = comfyrelay(
        "run",
        WORKFLOWS / "invert_api.json",
        "--server",
        nowhere,
        "--set",
        "Invert.strength=2",
        "--out",
        tmp_path,
    )
    assert bad.returncode == 1 and "has no input 'strength'" in bad.stderr


def test_check_and_unreachable(comfy_server: ComfyTestServer) -> None:
    ok = comfyrelay("check", "--server", comfy_server.url)
    assert ok.returncode == 0 and "Connected to ComfyUI" in ok.stdout
    # Everything a host folds under Details is printed here: the address, what is lacking.
    first, address, *lacking = ok.stdout.splitlines()
    assert first.endswith(" — ready.") and address == f"Server: {comfy_server.url}"
    if "0.38" in first:  # the newest ComfyUI lacks nothing ComfyRelay uses
        assert lacking == []
    else:
        assert "This server lacks" in lacking[0] and "job routes" in lacking[0], lacking
    down = comfyrelay("check", "--server", "http://127.0.0.1:9")
    assert down.returncode == 1 and "http://127.0.0.1:9" in down.stderr


def test_inputs_lists_bindable_inputs() -> None:
    result = comfyrelay("inputs", WORKFLOWS / "sd15_txt2img_api.json", "--json")
    rows = {row["key"]: row["kind"] for row in json.loads(result.stdout)}
    assert rows["3.seed"] == "seed" and rows["6.text"] == "prompt"
    plain = comfyrelay("inputs", WORKFLOWS / "invert_api.json")
    assert plain.stdout.startswith("1.image") and "Input (LoadImage)" in plain.stdout


def test_ctrl_c_on_a_comfyui_run_says_cancelled(
    comfy_server: ComfyTestServer, tmp_path: Path
) -> None:
    """Ctrl-C cancels the job; on a plain ComfyUI nothing more is known than "Cancelled."
    (a hosted service's answer replaces it: tests/cli/test_hosted.py)."""
    comfy_server.node_delay = 0.5
    with mid_job(slow_run(comfy_server, tmp_path)) as (proc, seen):
        proc.send_signal(signal.SIGINT)
        rest = read_rest(proc)
        code = proc.wait(30)
    assert code == 130 and rest[-1] == "Cancelled.", (seen, rest)


def slow_run(server: ComfyTestServer, tmp_path: Path, *options: str) -> list[str]:
    """`comfyrelay run` of a workflow that runs for seconds on the test server."""
    workflow = tmp_path / "slow.json"
    workflow.write_text(json.dumps(workflows.slow().graph), encoding="utf-8")
    return [sys.executable, "-m", "comfyrelay", "run", str(workflow), "--server", server.url,
            "--out", str(tmp_path / "out"), *options]


def ignore_sigint() -> None:
    """In the child before exec: what a non-interactive shell does to a background job
    (`cmd &`), which Python then leaves ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def mid_job(
    command: list[str], *, sigint_ignored: bool = False
) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """Start the CLI and return once it prints a progress line (the job runs on the server),
    with the stderr lines seen so far."""
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          preexec_fn=ignore_sigint if sigint_ignored else None) as proc:
        assert proc.stderr is not None
        # readline() has no timeout: a CLI that hangs silently is killed, which ends the reads.
        limit = threading.Timer(120, proc.kill)
        limit.start()
        try:
            seen = [proc.stderr.readline()]
            while "%" not in seen[-1]:  # a progress line: the job runs on the server
                assert seen[-1], seen  # not ended before it ran
                seen.append(proc.stderr.readline())
            yield proc, seen
        finally:
            limit.cancel()
            if proc.poll() is None:  # a failed assertion must not leave it running
                proc.kill()


def read_rest(proc: subprocess.Popen[str], timeout: float = 30) -> list[str]:
    """The rest of stderr, once the process exits (bounded: communicate's timeout)."""
    _, err = proc.communicate(timeout=timeout)
    return err.splitlines()


def interrupted_on_server(server: ComfyTestServer) -> bool:
    """The server stopped our one job: its history ends with `execution_interrupted`."""
    assert server.wait_idle(10), "the server still runs the job"
    (entry,) = server.history.values()
    return bool(entry["status"]["messages"][-1][0] == "execution_interrupted")


@pytest.mark.parametrize(
    ("signum", "code", "said"),
    [
        (signal.SIGINT, 130, "Cancelling…"),
        (signal.SIGTERM, 143, "Cancelling… (SIGTERM)"),
        (signal.SIGHUP, 129, "Cancelling… (SIGHUP: the terminal closed)"),
    ],
    ids=["SIGINT while ignored", "SIGTERM", "SIGHUP"],
)
def test_a_signal_mid_job_cancels_it_on_the_server(
    comfy_server: ComfyTestServer, tmp_path: Path, signum: int, code: int, said: str
) -> None:
    """Started with SIGINT ignored (a background job of a non-interactive shell), Ctrl-C
    still cancels; SIGTERM (a supervisor, a timeout) and SIGHUP (the terminal closed) cancel
    the same way: the server's job is interrupted, the message says so, and the exit code
    is 128 + the signal."""
    comfy_server.node_delay = 0.5
    with mid_job(slow_run(comfy_server, tmp_path), sigint_ignored=True) as (proc, seen):
        proc.send_signal(signum)
        rest = read_rest(proc)
    assert proc.returncode == code, (seen, rest)
    assert said in rest and rest[-1] == "Cancelled.", rest
    assert interrupted_on_server(comfy_server)
    assert proc.stdout is not None and not (tmp_path / "out").exists()  # nothing saved


def test_a_second_ctrl_c_while_cancelling_leaves_at_once(
    comfy_server: ComfyTestServer, tmp_path: Path
) -> None:
    """The server does not answer the cancel (its answer never ends): a second Ctrl-C leaves
    at once, exit 130, saying the job may go on there."""
    comfy_server.node_delay = 0.5
    for route in ("POST /queue", "POST /interrupt", "POST /jobs"):  # each profile's cancel
        comfy_server.faults.endless_json[route] = 0.5
    with mid_job(slow_run(comfy_server, tmp_path), sigint_ignored=True) as (proc, seen):
        proc.send_signal(signal.SIGINT)
        wait_for(lambda: any(r.startswith("POST") and ("/queue" in r or "/jobs/" in r)
                             for r in list(comfy_server.seen)), message="no cancel sent")
        proc.send_signal(signal.SIGINT)
        start = time.monotonic()
        rest = read_rest(proc, timeout=10)
        seconds = time.monotonic() - start
    assert proc.returncode == 130, (seen, rest)
    assert seconds < 3, seconds
    assert rest[-1] == ("Stopped waiting (Ctrl-C): the job may go on on the server (and bill, "
                        "on a hosted service)."), rest


def on_terminal(command: list[str], columns: int, timeout: float = 60) -> tuple[int, str]:
    """Run with stderr on a pseudo-terminal `columns` wide; its exit code and what the
    terminal received (stdout stays a pipe, as in `comfyrelay run ... > files.txt`)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=follower) as proc:
        os.close(follower)  # the child holds it: its exit ends the reads below
        received = b""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([leader], [], [], 0.5)
                if not ready:
                    continue
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                received += chunk
            code = proc.wait(max(0.1, deadline - time.monotonic()))
        finally:
            os.close(leader)
            if proc.poll() is None:
                proc.kill()
    return code, received.decode().replace("\r\n", "\n")  # the terminal's own newline


def test_progress_on_a_terminal_is_one_updating_line(
    comfy_server: ComfyTestServer, tmp_path: Path
) -> None:
    """On a terminal the job's progress is one line redrawn in place (bar, percentage,
    elapsed, node and step), never wider than the terminal: after the run the screen holds
    only the messages, not a line per step."""
    comfy_server.node_delay = 0.5
    code, shown = on_terminal(slow_run(comfy_server, tmp_path), columns=60)
    assert code == 0, shown
    assert shown.count("\n") == 2, shown  # "Queued on the server." and "Done: ..."
    lines = shown.split("\n")
    assert lines[0] == "Queued on the server." and lines[1].endswith("Done: 1 file(s) in "
                                                                    f"{tmp_path / 'out'}")
    draws = [d.rstrip() for d in lines[1].split("\r") if d.startswith("[")]
    line = re.compile(r"\[[#.]{20}\] +(\d+)% (\d+):(\d\d)  (\w+)( \d+/\d+)?$")
    parsed = [line.match(d) for d in draws]
    assert all(parsed) and len(parsed) > 10, draws
    assert any(m.group(4, 5) == ("ImageBlur", " 2/4") for m in parsed if m), draws  # node, step
    assert all(len(d) < 60 for d in draws), draws
    percents = [int(m.group(1)) for m in parsed if m]
    seconds = [int(m.group(2)) * 60 + int(m.group(3)) for m in parsed if m]
    assert percents == sorted(percents) and percents[-1] > percents[0], percents
    assert seconds == sorted(seconds) and seconds[-1] >= 2, seconds  # 6 nodes of 0.5 s


def test_sighup_after_the_terminal_closed_still_cancels(
    comfy_server: ComfyTestServer, tmp_path: Path
) -> None:
    """The terminal window is closed: SIGHUP comes, and every write to stderr fails (EIO).
    The job is still cancelled on the server, and the exit code is 129."""
    comfy_server.node_delay = 0.5
    leader, follower = pty.openpty()
    with subprocess.Popen(slow_run(comfy_server, tmp_path), stdout=subprocess.DEVNULL,
                          stderr=follower) as proc:
        os.close(follower)
        try:
            received, deadline = b"", time.monotonic() + 60
            while b"%" not in received:  # a progress line: the job runs on the server
                assert time.monotonic() < deadline, received
                if select.select([leader], [], [], 0.5)[0]:
                    received += os.read(leader, 65536)
        finally:
            os.close(leader)  # the terminal is gone: the CLI's writes fail from now on
        proc.send_signal(signal.SIGHUP)
        code = proc.wait(30)
    assert code == 129
    assert interrupted_on_server(comfy_server)


def test_signal_handlers_only_in_the_main_thread_and_restored_after() -> None:
    """The command's handlers replace the caller's only while it runs, and only in the main
    thread (a host or a test calling the CLI from another thread keeps its own)."""
    before = {signum: signal.getsignal(signum) for signum in signals.HANDLED}
    with signals.Guard():
        assert all(signal.getsignal(s) is not before[s] for s in signals.HANDLED)
    assert {s: signal.getsignal(s) for s in signals.HANDLED} == before
    assert main(["inputs", str(WORKFLOWS / "invert_api.json")]) == 0
    assert {s: signal.getsignal(s) for s in signals.HANDLED} == before
    inside: list[dict[int, object]] = []

    def elsewhere() -> None:
        with signals.Guard():
            inside.append({s: signal.getsignal(s) for s in signals.HANDLED})

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join(5)
    assert inside == [before]


def test_version_names_the_package_and_the_add_ons_core() -> None:
    """`--version` prints pyproject.toml's version (which names the add-on zips) and the
    core's `__version__` (the core vendored into them): both the same."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        project = tomllib.load(f)["project"]["version"]
    result = comfyrelay("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (f"comfyrelay {project} (core {project}, as vendored into the "
                             "Blender and Krita add-on zips)\n")
