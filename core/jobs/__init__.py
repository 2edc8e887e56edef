"""Jobs and workflows: what a host submits, the runner that sends it, the events it hears back."""
