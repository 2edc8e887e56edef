"""The pool file is checked whole before anything is sent: an unknown kind, a duplicate
worker, a missing credential or a key the kind does not have is refused, naming the entry."""

from __future__ import annotations

from pathlib import Path

import pytest
from comfyrelay import KINDS, load_credentials
from comfyrelay.errors import ComfyRelayError
from comfyrelay.pool.poolfile import load_specs

from tests.hosted import isolated  # noqa: F401  (autouse: no credentials from the environment)
from tests.pool.helpers import pool_file

COMFY = {"kind": "comfyui", "url": "http://127.0.0.1:8188"}


def refused(path: Path) -> str:
    with pytest.raises(ComfyRelayError) as caught:
        load_specs([path], [], KINDS, load_credentials())
    return str(caught.value)


def test_an_unknown_kind_is_refused_naming_the_entry(tmp_path: Path) -> None:
    path = pool_file(tmp_path / "pool.json", [COMFY, {"kind": "runpod", "url": "x"}])
    message = refused(path)
    assert f"{path} worker 2" in message and "Unknown back end 'runpod'" in message


def test_a_duplicate_worker_is_refused_naming_both(tmp_path: Path) -> None:
    path = pool_file(tmp_path / "pool.json", [COMFY, {**COMFY, "slots": 2}])
    message = refused(path)
    assert f"{path} worker 2" in message and f"duplicates {path} worker 1" in message


def test_a_missing_credential_is_refused_naming_the_entry(tmp_path: Path) -> None:
    path = pool_file(tmp_path / "pool.json", [
        COMFY, {"kind": "runcomfy-serverless", "deployment_id": "dep-1"}])
    message = refused(path)
    assert f"{path} worker 2 (runcomfy-serverless dep-1)" in message
    assert "RUNCOMFY_API_TOKEN" in message


def test_a_key_the_kind_does_not_have_is_refused(tmp_path: Path) -> None:
    path = pool_file(tmp_path / "pool.json", [{**COMFY, "deployment": "dep-1"}])
    message = refused(path)
    assert f"{path} worker 1" in message and "unknown key(s) deployment" in message


def test_a_malformed_file_says_where(tmp_path: Path) -> None:
    path = tmp_path / "pool.json"
    path.write_text('{"workers": [{"kind": "comfyui", "slots": 0}]}')
    assert "workers.0.slots" in refused(path)


def test_several_servers_and_files_make_one_pool(tmp_path: Path) -> None:
    path = pool_file(tmp_path / "pool.json", [{**COMFY, "slots": 2, "name": "workstation"}])
    specs = load_specs([path], ["http://127.0.0.1:8189"], KINDS, load_credentials())
    assert [(s.name, s.slots) for s in specs] == [
        ("workstation", 2), ("comfyui http://127.0.0.1:8189", 1)]
