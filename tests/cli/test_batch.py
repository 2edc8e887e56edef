"""`comfyrelay batch` and `run` over a pool: results named after their input and in order,
per-worker progress, `--estimate` (nothing sent), `--max-cost` below and between the
estimate, and a bad pool file refused before anything is sent."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from comfyrelay.cli.main import main
from comfyrelay.runcomfy.ledger import Ledger

from tests.hosted import TOKENS, isolated  # noqa: F401  (autouse: a private config folder)
from tests.paths import WORKFLOWS
from tests.pool import helpers as h
from tests.servers.runcomfy import RunComfyTestServer

INVERT = str(WORKFLOWS / "invert_api.json")


def frames(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        (folder / f"frame_{n:03d}.png").write_bytes(h.frame(n))
    return folder


def test_batch_over_two_servers_names_results_after_their_inputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = frames(tmp_path / "in", 8)
    out = tmp_path / "out"
    with h.servers(tmp_path, 2) as found:
        code = main(["batch", INVERT, "--images", str(images), "--out", str(out),
                     "--server", found[0].url, "--server", found[1].url])
        used = [len(s.prompts) for s in found]
    shown = capsys.readouterr()
    assert code == 0, shown.err
    printed = [Path(line) for line in shown.out.splitlines()]
    assert printed == [out / f"frame_{n:03d}.png" for n in range(8)]  # input order
    assert [h.frame_of(p) for p in printed] == list(range(8))  # each is its input inverted
    assert sorted(p.name for p in out.iterdir()) == [p.name for p in printed]
    assert all(n > 0 for n in used)  # both servers worked
    assert "Done: 8 job(s) finished, 0 failed" in shown.err
    assert f"comfyui {found[0].url}: up" in shown.err  # progress per worker


def test_batch_takes_a_glob(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images = frames(tmp_path / "in", 3)
    (images / "notes.txt").write_text("not an image")
    with h.servers(tmp_path, 1) as found:
        code = main(["batch", INVERT, "--images", str(images / "frame_00[02].png"),
                     "--out", str(tmp_path / "out"), "--server", found[0].url])
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "frame_000.png", "frame_002.png"]


@pytest.fixture
def serverless(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("RUNCOMFY_API_TOKEN", TOKENS[0])
    with RunComfyTestServer(tokens=TOKENS, instances=2, run_time=0.2, rate=1000.0,
                            burst=1000) as rc:
        yield rc


def serverless_pool(tmp_path: Path, rc: RunComfyTestServer, **price: Any) -> Path:
    dep = rc.add_deployment(json.loads(Path(INVERT).read_text()))
    worker = {"kind": "runcomfy-serverless", "deployment_id": dep, "api_url": rc.url,
              "poll_interval": 0.05, "slots": 2, **price}
    return h.pool_file(tmp_path / "pool.json", [worker])


PRICED = {"price_per_second": 1.0, "seconds_per_job": 0.2}  # $0.20 a job


def test_estimate_prints_time_and_cost_and_sends_nothing(
    tmp_path: Path, serverless: RunComfyTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    pool = serverless_pool(tmp_path, serverless, **PRICED)
    code = main(["batch", INVERT, "--images", str(frames(tmp_path / "in", 10)),
                 "--out", str(tmp_path / "out"), "--pool", str(pool), "--estimate"])
    shown = capsys.readouterr().out
    assert code == 0
    assert "Estimate: 10 job(s) in about 1.0 s, cost $2.00" in shown
    assert serverless.inference == {} and not (tmp_path / "out").exists()


def test_estimate_names_a_missing_price(
    tmp_path: Path, serverless: RunComfyTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    pool = serverless_pool(tmp_path, serverless, seconds_per_job=0.2)
    code = main(["run", INVERT, "--image", str(frames(tmp_path / "in", 1) / "frame_000.png"),
                 "--pool", str(pool), "--estimate"])
    shown = capsys.readouterr().out
    assert code == 0 and "cost unknown" in shown
    assert "unknown: runcomfy-serverless" in shown and "price_per_second" in shown
    assert serverless.inference == {}


def test_max_cost_below_the_first_job_sends_nothing(
    tmp_path: Path, serverless: RunComfyTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    pool = serverless_pool(tmp_path, serverless, **PRICED)
    code = main(["batch", INVERT, "--images", str(frames(tmp_path / "in", 10)),
                 "--out", str(tmp_path / "out"), "--pool", str(pool), "--max-cost", "0.1"])
    err = capsys.readouterr().err
    assert code == 1
    assert "passes --max-cost $0.10" in err
    assert "Stopped sending jobs: the next one would pass --max-cost $0.10" in err
    assert serverless.inference == {}


def test_max_cost_between_stops_at_the_cap_and_keeps_the_results(
    tmp_path: Path, serverless: RunComfyTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    pool = serverless_pool(tmp_path, serverless, **PRICED)
    out = tmp_path / "out"
    code = main(["batch", INVERT, "--images", str(frames(tmp_path / "in", 10)),
                 "--out", str(out), "--pool", str(pool), "--max-cost", "1.0"])
    shown = capsys.readouterr()
    assert code == 1
    kept = [Path(line) for line in shown.out.splitlines()]
    assert 1 <= len(kept) < 10 and all(p.exists() for p in kept)
    assert [p.name for p in kept] == [f"frame_{n:03d}.png" for n in range(len(kept))]
    assert len(serverless.inference) == len(kept)  # nothing sent past the cap
    assert "Stopped sending jobs: the next one would pass --max-cost $1.00" in shown.err
    assert "Cost: $" in shown.err and "(estimate $2.00)" in shown.err


def test_a_bad_pool_file_is_refused_before_anything_is_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with h.servers(tmp_path, 1) as found:
        pool = h.pool_file(tmp_path / "pool.json", [
            {"kind": "comfyui", "url": found[0].url},
            {"kind": "runcomfy-serverless", "deployment_id": "dep-1"}])
        code = main(["batch", INVERT, "--images", str(frames(tmp_path / "in", 2)),
                     "--out", str(tmp_path / "out"), "--pool", str(pool)])
        sent = [r for r in found[0].seen if r.startswith("POST")]
    assert code == 1 and sent == []
    assert f"{pool} worker 2 (runcomfy-serverless dep-1)" in capsys.readouterr().err


def test_ctrl_c_mid_batch_cancels_the_rest_and_keeps_the_results(tmp_path: Path) -> None:
    images = frames(tmp_path / "in", 12)
    out = tmp_path / "out"
    with h.servers(tmp_path, 2, job_seconds=1.0) as found:
        command = [sys.executable, "-m", "comfyrelay", "batch", INVERT, "--images", str(images),
                   "--out", str(out), "--server", found[0].url, "--server", found[1].url]
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) as proc:
            limit = threading.Timer(60, proc.kill)  # readline() has no timeout
            limit.start()
            try:
                assert proc.stdout is not None
                first = proc.stdout.readline()  # one result is in: the batch runs
                proc.send_signal(signal.SIGINT)
                # read() keeps what readline() buffered (communicate() would lose it); the
                # timer above bounds both.
                rest = proc.stdout.read()
                assert proc.stderr is not None
                err = proc.stderr.read()
                proc.wait(10)
            finally:
                limit.cancel()
        assert all(s.wait_idle(10) for s in found)  # nothing left running on the servers
    kept = [Path(line.strip()) for line in [first, *rest.splitlines()] if line.strip()]
    assert proc.returncode == 130, err
    assert 1 <= len(kept) < 12 and all(p.exists() for p in kept)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in kept), (rest, err)
    assert "cancelled." in err and "Cancelling" in err


def test_the_next_estimate_uses_the_times_a_run_measured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = frames(tmp_path / "in", 6)
    with h.servers(tmp_path, 2) as found:
        servers = ["--server", found[0].url, "--server", found[1].url]
        main(["batch", INVERT, "--images", str(images), "--out", str(tmp_path / "o1"),
              *servers, "--estimate"])
        before = capsys.readouterr().out
        assert main(["batch", INVERT, "--images", str(images), "--out", str(tmp_path / "o2"),
                     *servers]) == 0
        capsys.readouterr()
        main(["batch", INVERT, "--images", str(images), "--out", str(tmp_path / "o3"),
              *servers, "--estimate"])
        after = capsys.readouterr().out
    assert "unknown: comfyui" in before  # nothing measured yet
    assert "unknown" not in after and "cost $0.00" in after
    seconds = float(after.split("in about ")[1].split(" s")[0])
    assert 1.0 <= seconds <= 2.5  # 6 jobs of 0.5 s on two servers


def test_run_over_several_servers_saves_its_result_and_says_the_cost(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = frames(tmp_path / "in", 1) / "frame_000.png"
    with h.servers(tmp_path, 2) as found:
        code = main(["run", INVERT, "--image", str(image), "--out", str(tmp_path / "out"),
                     "--server", found[0].url, "--server", found[1].url])
    shown = capsys.readouterr()
    assert code == 0, shown.err
    (saved,) = [Path(line) for line in shown.out.splitlines()]
    assert saved.parent == tmp_path / "out" and h.frame_of(saved) == 0
    assert "Cost: $0.00" in shown.err


def test_a_machine_the_pool_leaves_running_is_named(
    tmp_path: Path, rc: RunComfyTestServer, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RUNCOMFY_USER_ID", rc.user_id)
    monkeypatch.setenv("RUNCOMFY_API_TOKEN", TOKENS[0])
    pool = h.pool_file(tmp_path / "pool.json", [
        {"kind": "runcomfy-machine", "workflow_version_id": "ver-1", "api_url": rc.url,
         "stop_on_close": False, "price_per_hour": 1.0}])
    code = main(["batch", INVERT, "--images", str(frames(tmp_path / "in", 2)),
                 "--out", str(tmp_path / "out"), "--pool", str(pool)])
    err = capsys.readouterr().err
    (server_id,) = rc.machines
    assert code == 0, err
    assert f"RunComfy machine {server_id} is still running and billing" in err
    assert f"comfyrelay machines stop {server_id}" in err


def test_keep_machine_leaves_each_of_a_pools_machines_running_and_names_it(
    tmp_path: Path, rc: RunComfyTestServer, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RUNCOMFY_USER_ID", rc.user_id)
    monkeypatch.setenv("RUNCOMFY_API_TOKEN", TOKENS[0])
    pool = h.pool_file(tmp_path / "pool.json", [
        {"kind": "runcomfy-machine", "workflow_version_id": "ver-1", "api_url": rc.url,
         "slots": 3, "price_per_hour": 1.0}])
    code = main(["batch", INVERT, "--images", str(frames(tmp_path / "in", 3)),
                 "--out", str(tmp_path / "out"), "--pool", str(pool), "--keep-machine"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert len(rc.machines) == 3, err  # one machine per slot, three jobs
    for server_id, machine in rc.machines.items():
        assert machine.stopped is None
        assert f"RunComfy machine {server_id} is still running and billing" in err
        assert f"comfyrelay machines stop {server_id}" in err
    assert {e.server_id for e in Ledger().entries()} == set(rc.machines)
