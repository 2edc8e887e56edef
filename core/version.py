"""The core's version. Its own module at the bottom of the layers, so the CLI (`comfyrelay
--version`) can read it without importing the package's public API from below it. The add-on
zips vendor this same core (build_addons.py copies core/), so this is their core's version
too; tests/test_cli.py checks it equals pyproject.toml's, which names the zips."""

__version__ = "0.1.0"
