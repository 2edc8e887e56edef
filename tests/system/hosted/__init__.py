"""The hosted back ends' fault suite (see tests/system/__init__.py)."""
