"""What the status line says of a workflow being converted, a refusal meanwhile, and the
end of a run."""

from __future__ import annotations

from comfyrelay.host.runs import Run
from comfyrelay.host.status import RunStatus


def test_converting_then_ready_and_a_refusal_meanwhile_wins() -> None:
    status = RunStatus()
    status.converting_file("img2img")
    assert status.status.startswith("Converting img2img")
    status.opened("")
    assert status.status == "Ready"
    status.converting_file("img2img")
    status.refused("Choose a workflow file.")
    status.opened("")  # the conversion ends after the refusal: the refusal stays said
    assert status.status == "Not started" and status.error == "Choose a workflow file."


def test_a_failed_conversion_says_why() -> None:
    status = RunStatus()
    status.converting_file("x")
    status.opened("The server lacks node Foo.")
    assert (status.status, status.error) == ("Not opened", "The server lacks node Foo.")


def test_the_end_of_a_run_of_frames_counts_them() -> None:
    status = RunStatus()
    run = Run("anim", noun="frame")
    run.jobs = {"a": 1, "b": 2}
    run.finished = 2
    status.ended(run)
    assert status.status == "Done: 2 of 2 frames" and status.progress == 1.0
