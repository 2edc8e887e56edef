"""The hosted back ends' fixtures (tests/hosted.py) for the tests in this folder: `isolated`
(autouse: a private config folder, no credentials from the environment, fast rate limits and
no secret in any log line), `comfy` (the ComfyUI test server), `rc` and `icu`."""

from tests.hosted import comfy, icu, isolated, rc  # noqa: F401
