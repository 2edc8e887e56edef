"""The session's back end and the kinds' controls: Reuse refused while a run is under way, a
Reuse remembered only for the back end built for it, and the look for machines left running
offered to both RunComfy kinds."""

from __future__ import annotations

from pathlib import Path

import pytest
from comfyrelay import ComfyRelayError, HostSettings
from comfyrelay.host.backend_slot import BackendSlot

from tests.hosted import TOKENS
from tests.servers.runcomfy import RunComfyTestServer


def configure(slot: BackendSlot, settings: HostSettings) -> None:
    slot.configure(settings.backend_settings(), settings.credentials())
    slot.apply(busy=False)


def rc_settings(rc: RunComfyTestServer, backend: str) -> HostSettings:
    return HostSettings(backend=backend, rc_user_id=rc.user_id, rc_token1=TOKENS[0],
                        rc_workflow_version="ver-1", rc_deployment="dep-1", rc_api_url=rc.url)


def test_reuse_waits_for_the_run_and_is_forgotten_by_another_kind(
    rc: RunComfyTestServer, tmp_path: Path
) -> None:
    slot = BackendSlot(config=tmp_path)
    with pytest.raises(ComfyRelayError, match="Wait for the current job"):
        slot.act("runcomfy-machine", "reuse", "m-1", busy=True)
    assert slot.act("runcomfy-machine", "reuse", "m-1") == "runcomfy-machine"
    configure(slot, rc_settings(rc, "runcomfy-serverless"))  # the user chose another kind
    configure(slot, rc_settings(rc, "runcomfy-machine"))
    machine = slot.backend
    assert machine is not None and not slot.working  # no launch nor attach without a click
    assert rc.called("POST", "/servers") == []
    slot.close()


def test_both_runcomfy_kinds_offer_the_look_for_machines_left_running(
    rc: RunComfyTestServer, tmp_path: Path
) -> None:
    slot = BackendSlot(config=tmp_path)
    for backend, offered in (("runcomfy-serverless", True), ("runcomfy-machine", True),
                             ("comfyui", False)):
        configure(slot, rc_settings(rc, backend))
        assert any(v.scan_tip for v in slot.views()) is offered, backend
    slot.close()
