"""Every failure the user can see is a ComfyRelayError whose text says what to do next."""

from __future__ import annotations

from dataclasses import dataclass


class ComfyRelayError(Exception):
    """Base class: str(error) is a complete, actionable message for the user."""


class ConnectionFailed(ComfyRelayError):
    """The server could not be reached, or the connection broke."""


class AuthenticationFailed(ComfyRelayError):
    """The server refused our credentials (401/403)."""


class ServerError(ComfyRelayError):
    """The server answered with an error we cannot recover from."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def transient(exc: Exception) -> bool:
    """Worth asking again: a dropped connection, a 5xx, or a server error without a status.
    A refusal (4xx: a bad key, a missing job, a rate limit given up on) is not."""
    if isinstance(exc, ConnectionFailed):
        return True
    return isinstance(exc, ServerError) and (exc.status or 500) >= 500


class RateLimited(ServerError):
    """HTTP 429 after all retries."""


class UploadTooLarge(ComfyRelayError):
    """The server refused an upload as too large (413)."""


class WorkflowError(ComfyRelayError):
    """The workflow file or a binding is unusable; nothing was sent."""


@dataclass(frozen=True)
class ValueProblem:
    """One value the server would refuse; `key` is the input's "node_id.input"."""

    key: str
    message: str

    def __str__(self) -> str:
        return self.message


class InvalidValues(WorkflowError):
    """Values the server would refuse (not in its list, out of range, wrong type), found
    before anything was sent; `problems` has one entry per value, for hosts to flag fields."""

    def __init__(self, message: str, problems: list[ValueProblem]) -> None:
        super().__init__("\n".join([message, *(f"  - {p}" for p in problems)]))
        self.problems = problems


@dataclass(frozen=True)
class NodeProblem:
    node_id: str
    class_type: str
    input_name: str
    reason: str

    def __str__(self) -> str:
        where = (
            f"node {self.node_id} ({self.class_type})"
            if self.class_type
            else f"node {self.node_id}"
        )
        if self.input_name:
            where += f", input '{self.input_name}'"
        return f"{where}: {self.reason}"


class PromptRejected(ComfyRelayError):
    """ComfyUI refused the prompt (400); `problems` lists each failing node input."""

    def __init__(self, message: str, problems: list[NodeProblem]) -> None:
        lines = [message, *(f"  - {p}" for p in problems)]
        super().__init__("\n".join(lines))
        self.problems = problems


class ExecutionFailed(ComfyRelayError):
    """A node raised while the server ran the workflow."""

    def __init__(self, message: str, node_id: str = "", node_type: str = "") -> None:
        super().__init__(message)
        self.node_id = node_id
        self.node_type = node_type


PLAIN_CANCEL = "Cancelled."


class CancelledByUser(ComfyRelayError):
    """The user cancelled the job. The message says more than PLAIN_CANCEL when the user
    needs to know it (RunComfy: the job may still finish and be billed)."""

    def __init__(self, message: str = PLAIN_CANCEL) -> None:
        super().__init__(message)


class ServerRestarted(ComfyRelayError):
    """The server forgot our job (restart): its result is lost."""


class UnsafeOutputName(ComfyRelayError):
    """A server-supplied file name could not be turned into a safe local name."""
