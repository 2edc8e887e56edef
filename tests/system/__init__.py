"""Whole-system suites: each test drives the core end to end (runner, back end, client, files)
against a real or a test server, so no single core module is what they test. Kept small:

- test_contract.py: the ComfyUI contract, against the test server or a real ComfyUI
  (COMFYUI_URL), for the whole client and runner stack;
- test_faults.py: fault injection against ComfyUI (misbehaving servers, hostile names,
  secrets), `pytest -m fault`, listed case by case in the README's fault table;
- hosted/test_hosted_faults.py: the same fault suite for every hosted back end at once
  (a folder of its own: it takes the hosted fixtures of tests/hosted.py, whose `comfy` is the
  test server, while test_contract.py's `comfy` may be a real ComfyUI).

A test of one module belongs next to that module's mirror instead (tests/X/test_Y.py).
"""
