"""The host session both add-ons drive, without a host: what the buttons allow, what the
status says, previews, results placed before a job ends, and when the back end is rebuilt."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from comfyrelay import (
    KINDS,
    BackendSettings,
    Bindings,
    Button,
    ControlsView,
    HostEvent,
    HostSession,
    HostSettings,
    InputFile,
    Job,
    JobFinished,
    JobOutput,
    JobPreview,
    RunEnded,
    Workflow,
    WorkflowOpened,
)
from comfyrelay.host.status import Flag, Status
from comfyrelay.runcomfy.machine import RunComfyMachineBackend

from tests import workflows
from tests.hosted import FAST_MACHINE, ICU_KEY, TOKENS, machine_api, pump_until, wait_for
from tests.imaging import gradient_png
from tests.paths import WORKFLOWS
from tests.servers.comfyicu import ComfyICUTestServer
from tests.servers.comfyui import ComfyTestServer
from tests.servers.runcomfy import RunComfyTestServer


def comfyui(url: str) -> HostSettings:
    return HostSettings(backend="comfyui", url=url)


def configure(session: HostSession, settings: HostSettings) -> None:
    session.configure(settings.backend_settings(), settings.credentials())


def machine_box(session: HostSession) -> ControlsView:
    """The chosen kind's box (the RunComfy machine's)."""
    return next(c for c in session.view.controls if c.title)


def machine_lines(session: HostSession) -> str:
    return "\n".join(machine_box(session).lines)


def button(session: HostSession, label: str) -> Button:
    return next(b for b in machine_box(session).buttons if b.label.startswith(label))


def press(session: HostSession, label: str) -> None:
    chosen = button(session, label)
    session.act(chosen.kind, chosen.action, chosen.target)


def machine(session: HostSession) -> RunComfyMachineBackend | None:
    backend = session.backend
    return backend if isinstance(backend, RunComfyMachineBackend) else None


def found(session: HostSession) -> ControlsView:
    return next(c for c in session.view.controls if c.found_title)


def invert_job(out: Path) -> Job:
    return Job(workflows.invert(), out, Bindings(), InputFile("in.png", gradient_png()))


def choose(session: HostSession, workflow: Workflow, folder: Path) -> str:
    """Open `workflow` as a host does once the user picks its file; its path."""
    path = folder / f"{workflow.name}_{len(list(folder.glob('*.json')))}.json"
    path.write_text(json.dumps(workflow.graph))
    assert session.open_workflow(str(path)) is not None
    return str(path)


def test_buttons_follow_what_the_back_end_can_do(
    comfy: ComfyTestServer, icu: ComfyICUTestServer, tmp_path: Path
) -> None:
    session = HostSession()
    configure(session, comfyui(comfy.url))
    view = session.view
    assert not view.can_run and view.run_tip == "Choose a workflow first."
    assert (view.state, view.status) == (Status.NO_WORKFLOW, "No workflow")
    choose(session, workflows.invert(), tmp_path)
    assert session.view.can_run and not session.view.can_cancel  # nothing runs yet
    assert session.view.run_tip == "" and session.view.status == "Ready"
    run = session.start_run("invert")
    session.submit(run, invert_job(tmp_path))
    assert session.view.can_cancel and not session.view.can_run
    assert "run is in progress" in session.view.run_tip
    pump_until(session, lambda: session.run is None)
    assert session.view.can_run and not session.view.can_cancel

    # ComfyICU cannot cancel a run once it is sent: Cancel stays grey, and says why.
    icu_settings = HostSettings(backend="comfyicu", icu_api_key=ICU_KEY, icu_workflow="wf-1",
                                icu_api_url=icu.url + "/api/v1")
    configure(session, icu_settings)
    run = session.start_run("t2i")
    session.submit(run, Job(workflows.slow(blurs=1, size=64), tmp_path))
    view = session.view
    assert not view.can_cancel and "cannot cancel" in view.cancel_tip
    assert not view.progress_known and not view.previews  # a busy bar, no preview box
    pump_until(session, lambda: session.run is None)
    session.close()


def test_previews_of_one_batch_come_as_one(comfy: ComfyTestServer, tmp_path: Path) -> None:
    session = HostSession()
    configure(session, comfyui(comfy.url))
    run = session.start_run("invert")
    session.submit(run, invert_job(tmp_path))
    assert comfy.wait_idle(20)
    runner = session.runner
    assert runner is not None  # the runner has read every message: one batch for the next pump
    wait_for(lambda: any(isinstance(e, JobFinished) for e in list(runner._events.queue)))
    seen: list[HostEvent] = []
    pump_until(session, lambda: session.run is None, seen)
    previews = [e for e in seen if isinstance(e, JobPreview)]
    assert len(previews) == 1  # the test server sent one per executed node
    session.close()


def test_a_final_event_waits_for_the_hosts_results(comfy: ComfyTestServer,
                                                   tmp_path: Path) -> None:
    """A host that places results in the background (Krita decodes off its main thread)
    holds the job: Done and the run's end come only once the result is placed."""
    session = HostSession()
    configure(session, comfyui(comfy.url))
    choose(session, workflows.invert(), tmp_path)
    run = session.start_run("invert")
    session.submit(run, invert_job(tmp_path))
    seen: list[HostEvent] = []

    def hold_outputs(event: HostEvent) -> None:
        seen.append(event)
        if isinstance(event, JobOutput):
            session.hold(event.job_id)

    end = time.monotonic() + 20
    while not any(isinstance(e, JobOutput) for e in seen):
        assert time.monotonic() < end
        session.pump(hold_outputs)
        time.sleep(0.02)
    runner = session.runner
    assert runner is not None  # the job has ended and its final event reached the session,
    pump_until(session, lambda: not runner.busy, seen)  # but its result is not placed
    assert not any(isinstance(e, (JobFinished, RunEnded)) for e in seen)
    assert session.busy and not session.view.can_run
    output = next(e for e in seen if isinstance(e, JobOutput))
    session.release(output.job_id)
    session.pump(seen.append)
    kinds = [type(e).__name__ for e in seen]
    assert kinds[-2:] == ["JobFinished", "RunEnded"], kinds
    assert session.view.status == "Done — 1 result" and session.view.progress == 1.0
    session.close()


def test_a_failure_shows_the_error_and_its_node(comfy: ComfyTestServer, tmp_path: Path) -> None:
    session = HostSession()
    configure(session, comfyui(comfy.url))
    choose(session, workflows.failing(), tmp_path)
    run = session.start_run("failing")
    session.submit(run, Job(workflows.failing(), tmp_path, Bindings(),
                            InputFile("in.png", gradient_png())))
    pump_until(session, lambda: session.run is None)
    view = session.view
    assert view.status == "Failed"
    assert view.error_node == "node 4 (ImageToMask)", view
    assert view.error and view.can_run
    session.close()


def test_frames_of_a_run_count_in_the_status(comfy: ComfyTestServer, tmp_path: Path) -> None:
    session = HostSession(max_in_flight=2)
    configure(session, comfyui(comfy.url))
    choose(session, workflows.invert(), tmp_path)
    run = session.start_run("invert", noun="frame", feeding=True)
    for frame in (1, 2, 3):
        session.submit(run, invert_job(tmp_path / str(frame)), frame)
    session.pump(lambda _: None)
    assert session.run is run  # more frames may come while the render runs
    session.end_feed(run)
    pump_until(session, lambda: session.run is None)
    assert session.view.status == "Done — 3 of 3 frames"
    assert sorted(run.jobs.values()) == [1, 2, 3] and run.finished == 3
    session.close()


def test_no_back_end_says_why_and_runs_nothing(tmp_path: Path) -> None:
    session = HostSession()
    settings = HostSettings(backend="comfyicu")  # no key, no workflow id
    configure(session, settings)
    assert "ComfyICU API key is missing" in session.view.problem
    with pytest.raises(Exception, match="ComfyICU API key is missing"):
        session.start_run("x")
    assert "ComfyICU API key is missing" in session.view.run_tip and not session.view.can_run
    session.check()
    assert session.view.connected is False and "ComfyICU" in session.view.connection


def test_every_choice_field_defaults_to_one_of_its_choices() -> None:
    """Blender warns on every redraw when an enum's default is not one of its items, and an
    empty value is a heading there, never an item."""
    defaults = HostSettings()
    for name, field in KINDS.fields().items():
        if field.choices:
            values = [value for value, _ in field.choices]
            assert "" not in values, name
            assert getattr(defaults, name) in values, name
    # ComfyICU's own choice sends no accelerator, also from a setting stored blank earlier.
    for stored in ("", "default"):
        icu = HostSettings(backend="comfyicu", icu_accelerator=stored).backend_settings()
        assert icu.settings.accelerator is None
    chosen = HostSettings(backend="comfyicu", icu_accelerator="L4").backend_settings()
    assert chosen.settings.accelerator == "L4"


def test_rebuilt_when_the_server_changes_tuned_when_only_the_price_does(
    comfy: ComfyTestServer, rc: RunComfyTestServer, tmp_path: Path
) -> None:
    session = HostSession(config=tmp_path)
    configure(session, comfyui(comfy.url))
    first = session.backend
    configure(session, comfyui(comfy.url).model_copy(update={"rc_deployment": "x"}))
    assert session.backend is first  # another back end's field: nothing to rebuild
    configure(session, comfyui(comfy.url.replace("127.0.0.1", "localhost")))
    assert session.backend is not first

    chosen = machine_settings(rc)
    configure(session, chosen)
    backend = machine(session)
    assert backend is not None and machine_box(session).title == "RunComfy machine"
    configure(session, chosen.model_copy(update={"rc_hourly_price": 2.5,
                                                 "rc_idle_minutes": 0}))
    status = backend.status()
    assert machine(session) is backend  # a rebuild would stop a paid machine
    assert status.auto_stop_in is None  # idle stop now "never"
    assert button(session, "Launch").enabled and not button(session, "Stop").enabled
    settings: BackendSettings = chosen.backend_settings()
    assert settings.settings.idle_stop == 900.0
    session.close()


def machine_settings(rc: RunComfyTestServer) -> HostSettings:
    return HostSettings(backend="runcomfy-machine", rc_user_id=rc.user_id, rc_token1=TOKENS[0],
                        rc_workflow_version="ver-1", rc_api_url=rc.url)


def test_machines_left_running_are_found_and_stopped(rc: RunComfyTestServer,
                                                     tmp_path: Path) -> None:
    rc.not_found_for = 0.0  # listed at once, without the brief 404 after a launch
    earlier = machine_api(rc)
    leftover = earlier.launch("ver-1", "medium", 600).server_id  # an earlier session's
    earlier.close()
    session = HostSession(config=tmp_path)
    settings = machine_settings(rc)
    assert session.scan_leftovers(settings)
    pump_until(session, lambda: bool(found(session).found))
    (row,) = found(session).found
    assert row.target == leftover and "not launched by ComfyRelay" in row.line
    assert [b.label for b in row.buttons] == ["Stop", "Reuse"]
    stop = row.buttons[0]
    session.act(stop.kind, stop.action, stop.target)
    pump_until(session, lambda: not found(session).found
               and not session.slot.controls[stop.kind].found.working)
    assert rc.machines[leftover].stopped is not None
    assert found(session).found_message.startswith(f"Stopped {leftover}")
    assert not HostSession().scan_leftovers(HostSettings())  # none set up
    session.close()


def test_a_reused_machine_is_forgotten_once_stopped(rc: RunComfyTestServer,
                                                    tmp_path: Path) -> None:
    rc.not_found_for = 0.0  # listed at once, without the brief 404 after a launch
    earlier = machine_api(rc)
    reused = earlier.launch("ver-1", "medium", 600).server_id
    earlier.close()
    session = HostSession(config=tmp_path)
    settings = machine_settings(rc)
    # The user's Reuse on a leftover row: the host shows the kind it names as chosen.
    assert session.act("runcomfy-machine", "reuse", reused) == "runcomfy-machine"
    configure(session, settings)
    reusing = machine(session)
    assert reusing is not None and reusing.server_id == reused
    reusing.timing = FAST_MACHINE
    pump_until(session, lambda: f"{reused}: Ready" in machine_lines(session))
    assert len(rc.called("POST", "/servers")) == 1  # attached, not launched
    press(session, "Stop")
    pump_until(session, lambda: machine(session) not in (None, reusing)
               and button(session, "Launch").enabled)
    assert rc.machines[reused].stopped is not None
    fresh = machine(session)
    assert fresh is not None and fresh.server_id == ""  # forgotten
    fresh.timing = FAST_MACHINE
    press(session, "Launch")  # a new machine, not the stopped one
    pump_until(session, lambda: ": Ready" in machine_lines(session))
    assert fresh.server_id not in ("", reused)
    assert len(rc.called("POST", "/servers")) == 2
    session.close()


def test_opened_workflow_is_typed_and_a_run_leaves_its_history_entry(
    comfy: ComfyTestServer, tmp_path: Path
) -> None:
    session = HostSession()
    configure(session, comfyui(comfy.url))
    path = str(WORKFLOWS / "noise_api.json")
    assert session.open_workflow(path) is not None  # API format: plain fields at once
    seen: list[HostEvent] = []
    pump_until(session, lambda: any(isinstance(e, WorkflowOpened) for e in seen), seen)
    opened = next(e for e in seen if isinstance(e, WorkflowOpened))
    fields = {i.key: i for i in opened.inputs}
    assert opened.typed and fields["2.seed"].has_seed_control
    assert (fields["2.strength"].min, fields["2.strength"].max) == (0.0, 1.0)
    workflow = session.workflow(path)
    assert workflow is not None
    with pytest.raises(Exception, match="above the maximum 1"):
        session.check_values(workflow, Bindings(values={"2.strength": 3.0}))
    bindings = Bindings(values={"2.seed": 42, "2.strength": 0.25})
    run = session.start_run(workflow.name, workflow_path=path, bindings=bindings)
    session.submit(run, Job(workflow, tmp_path, bindings, InputFile("in.png", gradient_png())))
    seen.clear()
    pump_until(session, lambda: session.run is None, seen)
    ended = next(e for e in seen if isinstance(e, RunEnded))
    record = ended.record
    assert record is not None and record.seed == 42 and record.workflow_path == path
    assert record.backend == "comfyui" and record.outputs and Path(record.outputs[0]).is_file()
    assert record.bindings.values["2.strength"] == 0.25
    session.close()


def test_switching_workflows_clears_the_last_runs_messages_and_bar(
    comfy: ComfyTestServer, tmp_path: Path
) -> None:
    session = HostSession()
    configure(session, comfyui(comfy.url))
    assert not session.view.progress_shown  # nothing ran: the bar is empty and quiet
    choose(session, workflows.failing(), tmp_path)
    run = session.start_run("failing")
    session.submit(run, Job(workflows.failing(), tmp_path, Bindings(),
                            InputFile("in.png", gradient_png())))
    pump_until(session, lambda: session.run is None)
    assert session.view.state == Status.FAILED and session.view.error
    assert session.view.progress_shown
    choose(session, workflows.invert(), tmp_path)
    view = session.view
    assert (view.status, view.error, view.error_node) == ("Ready", "", "")
    assert not view.progress_shown and view.progress == 0.0
    session.refuse("Choose a source image.")
    assert session.view.error == "Choose a source image."
    session.close_workflow()
    view = session.view
    assert (view.status, view.error, view.can_run) == ("No workflow", "", False)
    session.close()


def test_a_run_keeps_its_status_and_bar_when_the_workflow_changes_meanwhile(
    comfy: ComfyTestServer, tmp_path: Path
) -> None:
    """Choosing another workflow while a run goes on must not say "Ready" over it: the run
    says how it goes and how it ended; the next choice clears that."""
    session = HostSession()
    configure(session, comfyui(comfy.url))
    choose(session, workflows.failing(), tmp_path)
    run = session.start_run("failing")
    session.submit(run, Job(workflows.failing(), tmp_path, Bindings(),
                            InputFile("in.png", gradient_png())))
    choose(session, workflows.invert(), tmp_path)  # the user moves on during the run
    view = session.view
    assert view.state == Status.SENDING and view.progress_shown and not view.can_run
    pump_until(session, lambda: session.run is None)
    view = session.view
    assert view.state == Status.FAILED and view.error and view.progress_shown
    choose(session, workflows.invert(), tmp_path)
    view = session.view
    assert (view.status, view.error, view.progress_shown) == ("Ready", "", False)
    session.close()


def test_another_back_end_drops_the_old_servers_flags_and_retypes_the_workflow(
    comfy: ComfyTestServer, tmp_path: Path
) -> None:
    """Run must not stay disabled by what the old server would have refused: the workflow is
    opened again, so the hosts type (and flag) its fields from the new server."""
    session = HostSession()
    configure(session, comfyui(comfy.url))
    path = str(WORKFLOWS / "noise_api.json")
    session.open_workflow(path)
    pump_until(session, lambda: not session.converting)
    session.flag_values([Flag("2.strength", "Strength", "above the maximum 1")])
    assert not session.view.can_run
    configure(session, comfyui(comfy.url + "/"))  # another address: another back end
    view = session.view
    assert view.can_run and view.state == Status.READY and view.attention == ""
    seen: list[HostEvent] = []
    pump_until(session, lambda: any(isinstance(e, WorkflowOpened) for e in seen), seen)
    opened = next(e for e in seen if isinstance(e, WorkflowOpened))
    assert opened.path == path and opened.typed  # the hosts retype its fields
    session.close()


def test_run_again_ignores_the_chosen_workflows_flags_but_waits_for_a_run(
    comfy: ComfyTestServer, tmp_path: Path
) -> None:
    """Run Again sends a past run's own workflow and values: the fields' flags do not stop
    it (both hosts read can_rerun); a run under way does."""
    session = HostSession()
    assert not session.view.can_rerun and session.view.rerun_tip
    configure(session, comfyui(comfy.url))
    choose(session, workflows.invert(), tmp_path)
    session.flag_values([Flag("4.ckpt_name", "Checkpoint", "the server has no checkpoints")])
    view = session.view
    assert not view.can_run and view.can_rerun and view.rerun_tip == ""
    run = session.start_run("invert")
    session.submit(run, invert_job(tmp_path))
    assert not session.view.can_rerun and "run is in progress" in session.view.rerun_tip
    pump_until(session, lambda: session.run is None)
    assert session.view.can_rerun
    session.close()


def test_another_back_end_clears_the_runs_messages_and_the_connection(
    comfy: ComfyTestServer, tmp_path: Path
) -> None:
    session = HostSession()
    configure(session, comfyui(comfy.url))
    choose(session, workflows.invert(), tmp_path)
    session.check()
    pump_until(session, lambda: session.view.connected is not None)
    view = session.view
    assert view.connection.startswith("Connected to ComfyUI") and view.connection.endswith(
        " — ready.")
    assert comfy.url in view.connection_details  # the rest: under the details toggle
    session.refuse("The server would refuse these values.")
    configure(session, comfyui(comfy.url + "/"))  # another address: another back end
    view = session.view
    assert (view.error, view.connection, view.connected) == ("", "Not checked", None)
    assert view.status == "Ready"  # the workflow stays chosen
    session.close()


def test_flagged_values_are_named_and_keep_run_disabled(
    comfy: ComfyTestServer, tmp_path: Path
) -> None:
    session = HostSession()
    configure(session, comfyui(comfy.url))
    choose(session, workflows.invert(), tmp_path)
    checkpoint = Flag("4.ckpt_name", "Checkpoint", "the server has no checkpoints")
    session.flag_values([checkpoint])
    view = session.view
    line = "1 input needs attention: Checkpoint — the server has no checkpoints"
    assert (view.state, view.status, view.attention) == (Status.ATTENTION, line, line)
    assert not view.can_run and view.run_tip == line
    session.flag_values([checkpoint, Flag("3.sampler_name", "Sampler", "'eulr' is not one")])
    assert session.view.status.startswith("2 inputs need attention: Checkpoint — ")
    session.flag_values([])
    assert session.view.can_run and session.view.status == "Ready"
    session.close()


def test_a_conversion_ending_after_another_workflow_was_chosen_changes_nothing(
    comfy: ComfyTestServer, tmp_path: Path
) -> None:
    session = HostSession()
    configure(session, comfyui(comfy.url))
    unknown = tmp_path / "unknown_ui.json"  # a UI-format file the server cannot convert
    unknown.write_text(json.dumps({"nodes": [{"id": 1, "type": "NoSuchNode", "inputs": [],
                                              "outputs": [], "widgets_values": []}],
                                   "links": []}))
    assert session.open_workflow(str(unknown)) is None
    assert session.view.status == "Converting…" and "converted" in session.view.run_tip
    choose(session, workflows.invert(), tmp_path)  # the user moves on meanwhile
    seen: list[HostEvent] = []

    def left() -> list[WorkflowOpened]:  # the answer for the file the user has left
        return [e for e in seen if isinstance(e, WorkflowOpened) and e.path == str(unknown)]

    pump_until(session, lambda: bool(left()), seen)
    assert left()[0].error  # it did fail...
    view = session.view
    assert (view.status, view.error, view.can_run) == ("Ready", "", True)  # ...unseen here
    session.close()
