"""The pool tests run with a private config folder (measured times are kept there); `rc` and
`comfy` are the RunComfy and ComfyUI test servers for the pools of machines."""

from tests.hosted import comfy, isolated, rc  # noqa: F401
