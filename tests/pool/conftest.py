"""The pool tests run with a private config folder (measured times are kept there)."""

from tests.hosted import isolated  # noqa: F401
