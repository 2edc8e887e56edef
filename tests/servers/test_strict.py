"""The hosted test servers refuse what the services would, so the clients are really checked."""

from __future__ import annotations

import requests

from tests.hosted import ICU_KEY, TOKENS
from tests.runcomfy.test_serverless import SEEDED
from tests.servers.comfyicu import ComfyICUTestServer
from tests.servers.runcomfy import RunComfyTestServer

AUTH = {"Authorization": f"Bearer {TOKENS[0]}"}


def test_runcomfy_refuses_missing_auth_bad_bodies_and_bursts(rc: RunComfyTestServer) -> None:
    base = f"{rc.url}/prod/api/users/{rc.user_id}"
    assert requests.get(base + "/servers", timeout=5).status_code == 401
    assert requests.get(base + "/servers", headers={"Authorization": TOKENS[0]},
                        timeout=5).status_code == 401  # no "Bearer"
    launch = {"workflow_version_id": "ver-1", "server_type": "medium", "estimated_duration": 60}
    for body in ({**launch, "gpu": "A100"}, {"workflow_version_id": "ver-1"},
                 {**launch, "server_type": "huge"}, {**launch, "estimated_duration": "60"}):
        r = requests.post(base + "/servers", json=body, headers=AUTH, timeout=5)
        assert r.status_code == 400 and r.json()["error_code"] == "invalid_request"
    assert rc.machines == {}
    rc.rate, rc.burst = 1.0, 2
    codes = [requests.get(base + "/workflows", headers=AUTH, timeout=5).status_code
             for _ in range(5)]
    assert codes[:2] == [200, 200] and 429 in codes
    r = requests.get(base + "/workflows", headers=AUTH, timeout=5)
    assert r.status_code == 429 and r.json()["error_code"] == "rate_limited"


def test_comfyicu_refuses_missing_auth_and_unknown_fields(icu: ComfyICUTestServer) -> None:
    url = f"{icu.url}/api/v1/workflows/w/runs"
    body = {"workflow_id": "w", "prompt": {}}
    assert requests.post(url, json=body, timeout=5).status_code == 401
    auth = {"Authorization": f"Bearer {ICU_KEY}"}
    extra = {**body, "gpu": "T4"}
    assert requests.post(url, json=extra, headers=auth, timeout=5).status_code == 400
    bad_files = {**body, "files": {"input/x.png": "file:///etc/passwd"}}
    assert requests.post(url, json=bad_files, headers=auth, timeout=5).status_code == 400
    assert requests.post(url, json=body, headers=auth, timeout=5).status_code == 200


def test_runcomfy_serverless_wants_webhooks_in_the_query_and_a_name_on_patch(
    rc: RunComfyTestServer,
) -> None:
    """As RunComfy's official clients send them (runcomfy-cli, runcomfy-mcp)."""
    dep = rc.add_deployment(SEEDED, name="dep")
    submit = f"{rc.url}/prod/v1/deployments/{dep}/inference"
    body = {"overrides": {"2": {"inputs": {"seed": 1}}}}
    hook = {"webhook": "https://hooks.example/done", "webhook_intermediate_status": "true"}
    r = requests.post(submit, json={**body, **hook}, headers=AUTH, timeout=5)
    assert r.status_code == 400 and "query string" in r.json()["error_message"]
    r = requests.post(submit, json=body, params={"webhook": "file:///x"}, headers=AUTH, timeout=5)
    assert r.status_code == 400
    assert rc.inference == {}
    r = requests.post(submit, json=body, params=hook, headers=AUTH, timeout=5)
    assert r.status_code == 200
    assert rc.inference[r.json()["request_id"]].webhook == hook["webhook"]

    patch = f"{rc.url}/prod/v2/deployments/{dep}"
    r = requests.patch(patch, json={"max_instances": 2}, headers=AUTH, timeout=5)
    assert r.status_code == 400 and r.json()["error_message"] == "Deployment name is required"
    assert rc.deployments[dep]["max_instances"] != 2
    r = requests.patch(patch, json={"name": "dep", "max_instances": 2}, headers=AUTH, timeout=5)
    assert r.status_code == 200 and rc.deployments[dep]["max_instances"] == 2
