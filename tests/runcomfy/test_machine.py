"""RunComfy machines: launch -> Ready -> job on the machine's ComfyUI -> idle stop, with the
ledger right at each step; launch never sent twice; leaked machines found at start-up."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from comfyrelay import InputFile, Job, JobRunner
from comfyrelay.comfyui.server_backend import ComfyUIBackend
from comfyrelay.errors import AuthenticationFailed, ComfyRelayError
from comfyrelay.jobs import events as ev
from comfyrelay.jobs.backend_api import JobContext
from comfyrelay.runcomfy.api import Machine, MachineFailed
from comfyrelay.runcomfy.ledger import Ledger
from comfyrelay.runcomfy.machine import (
    MachineOptions,
    MachineState,
    RunComfyMachineBackend,
    find_running,
)

from tests.hosted import (
    FAST_MACHINE,
    TOKENS,
    finals,
    machine_api,
    no_secret_in_requests,
    wait_for,
)
from tests.imaging import gradient_png, is_inverse
from tests.servers.comfyui import ComfyTestServer
from tests.servers.runcomfy import RunComfyTestServer
from tests.workflows import invert, slow

# The watchdog (idle stop, a machine gone mid-job) is under test here: it looks often, and
# network errors while a machine starts are given up on quickly.
WATCHED = replace(FAST_MACHINE, unreachable_grace=0.5, watch_interval=0.05)


def machine_backend(
    rc: RunComfyTestServer, *, state_interval: float | None = None, **options: Any
) -> RunComfyMachineBackend:
    """A machine back end on the test server with short polls; `options` are MachineOptions."""
    timing = WATCHED
    if state_interval is not None:
        timing = replace(timing, state_interval=state_interval)
    chosen = MachineOptions(**{"workflow_version_id": "ver-1", "duration": 600, **options})
    return RunComfyMachineBackend(machine_api(rc), chosen, timing=timing)


def test_launch_ready_job_then_idle_stop_with_ledger_at_each_step(
    rc: RunComfyTestServer, tmp_path: Path
) -> None:
    rc.ready_delay = 0.6
    ledger = Ledger()
    backend = machine_backend(rc, idle_stop=0.6, hourly_price=1.2, extend_margin=60)
    runner = JobRunner(backend)
    png = gradient_png()
    runner.submit(Job(workflow=invert(), out_dir=tmp_path / "out", image=InputFile("in.png", png)))

    # Launched: the ledger knows the machine before it is Ready (it could leak from here on).
    wait_for(lambda: ledger.entries() != [])
    entry = ledger.entries()[0]
    assert entry.workflow_version_id == "ver-1" and entry.server_type == "medium"
    assert entry.status in ("Starting", "Initializing") and entry.ready_at is None

    events = runner.wait_idle(20)
    final = finals(events)
    assert isinstance(final[0], ev.JobFinished), final
    assert is_inverse(png, final[0].outputs[0])
    assert any(isinstance(e, ev.JobProgress) and "RunComfy machine" in e.message for e in events)

    # Ready: ledger has the billing start and the expected stop from RunComfy's own estimate.
    sid = backend.server_id
    ready = ledger.get(sid)
    assert ready is not None and ready.status == "Ready" and ready.ready_at is not None
    assert ready.expected_stop == pytest.approx(ready.ready_at + 600, abs=2)
    left = ready.time_left()
    assert left is not None and 590 < left <= 600
    assert len(rc.called("POST", "/servers")) == 1

    # Idle: stopped by the watchdog, billing ended, ledger entry gone.
    wait_for(lambda: backend.status().status == "Stopped", 5)
    assert rc.machines[sid].stopped is not None and ledger.get(sid) is None
    status = backend.status()
    assert status.billed_seconds > 0 and status.auto_stop_in is None
    assert status.cost is not None and status.cost > 0
    billed = rc.billed_seconds(sid)
    time.sleep(0.2)  # on purpose: time passes, and a stopped machine's billed time stays
    assert rc.billed_seconds(sid) == billed  # no longer billed
    runner.close()
    no_secret_in_requests(rc)


def test_double_click_and_two_backends_send_one_launch(rc: RunComfyTestServer) -> None:
    first, second = machine_backend(rc, idle_stop=None), machine_backend(rc, idle_stop=None)
    first.prepare()
    first.prepare()  # double click
    threads = [threading.Thread(target=b.ensure_ready) for b in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert first.server_id == second.server_id
    assert len(rc.called("POST", "/servers")) == 1
    assert second.launched_here is False  # reused from the ledger
    first.close()
    second.close()


def test_stop_while_the_launch_is_awaited_returns_at_once(rc: RunComfyTestServer) -> None:
    rc.ready_delay = 30.0
    backend = machine_backend(rc, idle_stop=None)
    backend.prepare()
    wait_for(lambda: Ledger().entries() != [])
    start = time.monotonic()
    backend.stop()
    assert time.monotonic() - start < 1.0
    assert rc.machines[backend.server_id].stopped is not None and Ledger().entries() == []
    assert backend.status().status == "Stopped"
    backend.close()


@pytest.mark.fault
def test_lost_launch_answer_adopts_the_machine_instead_of_launching_again(
    rc: RunComfyTestServer,
) -> None:
    rc.launch_answer_status = 502  # the machine is made, the answer is lost
    backend = machine_backend(rc, idle_stop=None)
    backend.ensure_ready()
    assert len(rc.called("POST", "/servers")) == 1
    assert backend.server_id in rc.machines and backend.status().status == "Ready"
    backend.close()
    assert rc.machines[backend.server_id].stopped is not None  # stop_on_close: launched here


@pytest.mark.fault
def test_failure_status_while_starting_is_a_clear_error(rc: RunComfyTestServer) -> None:
    rc.fail_next_launch = True
    backend = machine_backend(rc, idle_stop=None)
    with pytest.raises(MachineFailed, match="went to 'Error'"):
        backend.ensure_ready()
    assert backend.status().status == "Error"
    backend.close()


def test_brief_404_after_launch_is_tolerated_but_a_lasting_one_is_not(
    rc: RunComfyTestServer,
) -> None:
    rc.not_found_for = 0.3
    api = machine_api(rc)
    machine = api.launch("ver-1", "medium", 300)
    assert api.machine(machine.server_id) is None  # the brief 404
    ready = api.wait_ready(machine.server_id, first_delay=0.05, max_delay=0.1)
    assert ready.ready and ready.main_service_url == rc.comfy_url
    api.stop(machine.server_id)
    with pytest.raises(MachineFailed, match="does not know"):
        api.wait_ready(machine.server_id, first_delay=0.05, max_delay=0.1, not_found_grace=0.3)


def test_extend_when_a_job_would_outrun_the_machine(rc: RunComfyTestServer, tmp_path: Path) -> None:
    backend = machine_backend(rc, idle_stop=None, duration=120, extend_margin=300,
                              extend_step=600)
    runner = JobRunner(backend)
    image = InputFile("a.png", gradient_png())
    runner.submit(Job(workflow=invert(), out_dir=tmp_path, image=image))
    events = runner.wait_idle(20)
    assert isinstance(finals(events)[0], ev.JobFinished)
    assert rc.machines[backend.server_id].estimated_duration == 720
    entry = Ledger().get(backend.server_id)
    assert entry is not None and entry.estimated_duration == 720
    left = backend.time_left()
    assert left is not None and 700 < left <= 720
    runner.close()


def test_leaked_machine_from_an_earlier_session_is_found_at_start_up(
    rc: RunComfyTestServer,
) -> None:
    earlier = machine_backend(rc, idle_stop=None, stop_on_close=False)
    earlier.ensure_ready()
    earlier.close()  # the app quit without stopping it (or crashed)
    stranger = machine_api(rc).launch("ver-1", "large", 300)  # launched on the website

    def running() -> dict[str, Any]:
        return {r.machine.server_id: r for r in find_running(machine_api(rc), Ledger())}

    wait_for(lambda: set(running()) == {earlier.server_id, stranger.server_id})
    found = running()
    assert set(found) == {earlier.server_id, stranger.server_id}
    assert found[earlier.server_id].in_ledger and not found[stranger.server_id].in_ledger
    left = found[earlier.server_id].time_left()
    assert left is not None and 0 < left <= 600

    # The next session reuses it instead of paying for a second machine.
    later = machine_backend(rc, idle_stop=None)
    later.ensure_ready()
    assert later.server_id == earlier.server_id
    assert len(rc.called("POST", "/servers")) == 2  # earlier's and the stranger's only
    later.stop()
    assert Ledger().get(earlier.server_id) is None


def test_ledger_forgets_machines_runcomfy_stopped(rc: RunComfyTestServer) -> None:
    backend = machine_backend(rc, idle_stop=None, stop_on_close=False)
    backend.ensure_ready()
    machine_api(rc).stop(backend.server_id)  # stopped on the dashboard
    assert find_running(machine_api(rc), Ledger(), grace=0) == []
    assert Ledger().entries() == []


def test_token2_used_when_token1_is_refused_and_remembered(rc: RunComfyTestServer) -> None:
    rc.refused.add(TOKENS[0])
    api = machine_api(rc)
    assert [w.version_id for w in api.workflows()] == ["ver-1"]
    api.machines()
    auths = [r.authorization for r in rc.requests]
    assert auths == [f"Bearer {TOKENS[0]}", f"Bearer {TOKENS[1]}", f"Bearer {TOKENS[1]}"]
    machine_api(rc).workflows()  # a new client remembers too
    assert rc.requests[-1].authorization == f"Bearer {TOKENS[1]}"


@pytest.mark.fault
def test_both_tokens_refused_says_what_to_check_without_the_tokens(
    rc: RunComfyTestServer,
) -> None:
    rc.refused.update(TOKENS)
    with pytest.raises(AuthenticationFailed) as caught:
        machine_api(rc).machines()
    text = str(caught.value)
    assert "RUNCOMFY_API_TOKEN" in text
    assert all(token not in text for token in TOKENS)


def test_third_party_variants_are_tolerated(comfy: ComfyTestServer) -> None:
    with RunComfyTestServer(comfy.url, tokens=TOKENS, variant="guess") as rc:
        api = machine_api(rc)
        assert api.workflows()[0].version_id == "ver-1"
        machine = api.launch("ver-1", "medium", 300)
        ready = api.wait_ready(machine.server_id, first_delay=0.05, max_delay=0.1)
        assert ready.status == "ready" and ready.ready
        assert [m.server_id for m in api.machines()] == [machine.server_id]
        api.set_duration(machine.server_id, 900)  # the other body spelling
        assert rc.machines[machine.server_id].estimated_duration == 900
        assert api.stop(machine.server_id) is True
        assert api.stop(machine.server_id) is False  # 404: already stopped


def test_machine_model_tolerates_missing_and_null_fields() -> None:
    m = Machine.model_validate(
        {"server_id": "x", "current_status": "READY", "main_service_url": None, "extra": 1}
    )
    assert m.status == "ready" and not m.ready and m.stop_epoch() is None
    m = Machine.model_validate({"id": "y", "status": "Ready", "main_service_url": "https://a",
                                "service_ready_at": 1_700_000_000_000, "estimated_duration": 60})
    assert m.ready and m.stop_epoch() == 1_700_000_060.0


def test_reuse_only_backend_needs_a_running_machine(rc: RunComfyTestServer) -> None:
    with pytest.raises(ComfyRelayError, match="workflow version"):
        RunComfyMachineBackend(machine_api(rc))


def test_tune_changes_live_settings_at_once_even_while_the_machine_starts(
    rc: RunComfyTestServer,
) -> None:
    rc.ready_delay = 30.0  # the Launch thread waits for Ready all along
    backend = machine_backend(rc, idle_stop=None)
    backend.prepare()
    wait_for(lambda: Ledger().entries() != [])
    started = time.monotonic()
    backend.tune(hourly_price=2.0, idle_stop=300.0, duration=900)
    status = backend.status()
    assert time.monotonic() - started < 0.1  # no lock held over the Ready polls
    assert status.auto_stop_in is not None and status.auto_stop_in <= 300.0
    assert status.state in (MachineState.LAUNCHING, MachineState.STARTING)
    options = backend.options
    assert (options.hourly_price, options.idle_stop, options.duration) == (2.0, 300.0, 900)
    backend.stop()
    backend.close()


def test_tuned_idle_stop_and_price_apply_to_the_running_machine(rc: RunComfyTestServer) -> None:
    backend = machine_backend(rc, idle_stop=None)
    backend.ensure_ready()
    assert backend.status().cost is None
    backend.tune(hourly_price=3.6, idle_stop=0.3, duration=600)
    wait_for(lambda: backend.status().state is MachineState.STOPPED, 5)
    status = backend.status()
    assert status.status == "Stopped" and status.cost is not None and status.cost > 0
    assert rc.machines[backend.server_id].stopped is not None and Ledger().entries() == []
    backend.close()


class TrackedComfy(ComfyUIBackend):
    """The machine's ComfyUI back end, noting whether it was closed under a running job."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.finishing = 0
        self.closes = 0
        self.closed_under_a_job = False

    def finish(self, handle: Any, ctx: JobContext) -> list[Path]:
        self.finishing += 1
        try:
            return super().finish(handle, ctx)
        finally:
            self.finishing -= 1

    def close(self) -> None:
        self.closes += 1
        self.closed_under_a_job |= self.finishing > 0
        super().close()


def test_stop_during_a_job_ends_it_and_closes_the_comfyui_back_end_after_it(
    rc: RunComfyTestServer, comfy: ComfyTestServer, tmp_path: Path
) -> None:
    comfy.node_delay = 0.3
    made: list[TrackedComfy] = []

    def factory(url: str) -> TrackedComfy:
        made.append(TrackedComfy(url))
        return made[-1]

    backend = RunComfyMachineBackend(
        machine_api(rc), MachineOptions(workflow_version_id="ver-1", idle_stop=None),
        timing=WATCHED, comfy_factory=factory,
    )
    runner = JobRunner(backend)
    runner.submit(Job(workflow=slow(blurs=10, size=64), out_dir=tmp_path / "out"))
    wait_for(lambda: comfy.prompts != [], 15, "the job never reached the machine")
    backend.stop()  # the host's Stop button, mid-job
    events = runner.wait_idle(10)
    final = finals(events)[0]
    assert isinstance(final, ev.JobFailed) and "stopped during the job" in final.message, final
    assert len(made) == 1 and made[0].closes == 1 and not made[0].closed_under_a_job
    assert backend.status().state is MachineState.STOPPED
    runner.close()
