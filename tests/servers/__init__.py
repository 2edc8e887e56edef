"""Test servers that behave like ComfyUI and the hosted APIs, on 127.0.0.1."""
