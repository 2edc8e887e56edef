"""Test servers that behave like ComfyUI and the hosted APIs, on 127.0.0.1."""

from tests.servers.comfyui import ComfyTestServer, Faults

__all__ = ["ComfyTestServer", "Faults"]
