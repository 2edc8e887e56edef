"""ComfyUI: one server's HTTP routes and WebSocket stream, and the back end that runs jobs there."""
