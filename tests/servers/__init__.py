"""Test servers that behave like ComfyUI and the hosted APIs, on 127.0.0.1.

Their own tests are here too, named after the server they check (test_comfyui.py checks
comfyui.py; test_strict.py checks that runcomfy.py and comfyicu.py refuse what the services
would); tests/test_layout.py does not ask them to mirror core/."""

from tests.servers.comfyui import ComfyTestServer, Faults

__all__ = ["ComfyTestServer", "Faults"]
