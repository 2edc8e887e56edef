"""The host session: what Blender and Krita share between their UI and the runner."""
