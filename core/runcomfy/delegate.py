"""The machine's ComfyUI back end, shared by the jobs that run on it.

Once Ready, a machine's main_service_url is a plain ComfyUI, so jobs go through a
ComfyUIBackend. When the machine stops or fails, that back end is let go ("retired"), but a
job still using it keeps it open until the job ends: it is closed by whoever lets go last.
"""

from __future__ import annotations

import threading

from ..errors import CancelledByUser, ComfyRelayError
from ..jobs.backend_api import Backend, JobContext
from .api import MachineFailed


class SharedDelegate:
    """A ComfyUI back end with a count of the jobs using it. Any thread may call; the small
    lock guards the count and the retired flag only, never a call of the back end."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._lock = threading.Lock()
        self._users = 0
        self._retired = False
        self._lost = threading.Event()  # the machine stopped or failed: jobs on it end
        self._reason = ""
        self._failed = False

    def use(self) -> SharedDelegate:
        """Count one more user (a job, a check); each use() needs one done()."""
        with self._lock:
            self._users += 1
        return self

    def done(self) -> None:
        with self._lock:
            self._users -= 1
            close = self._retired and self._users == 0
        if close:
            self.backend.close()

    def retire(self, reason: str = "", *, failed: bool = False) -> None:
        """The machine is gone (or this session closes): jobs still on it end with `reason`
        (a MachineFailed if `failed`), and the back end closes when the last one ends."""
        with self._lock:
            if self._retired:
                return
            self._retired = True
            self._reason, self._failed = reason, failed
            close = self._users == 0
        self._lost.set()
        if close:
            self.backend.close()

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    @property
    def stopped_by_us(self) -> bool:
        """Retired because this session stopped the machine (not because it failed)."""
        return self.lost and not self._failed

    def error(self) -> ComfyRelayError:
        """What a job on this back end ends with once it is lost."""
        reason = self._reason or "The RunComfy machine was stopped during the job."
        return MachineFailed(reason) if self._failed else ComfyRelayError(reason)


class WatchedContext(JobContext):
    """The job's context as the machine's ComfyUI back end sees it: it also counts as
    cancelled when the machine failed or stopped, so the job ends at once. Used on the
    runner's thread, like the context it wraps."""

    def __init__(self, ctx: JobContext, delegate: SharedDelegate) -> None:
        super().__init__(ctx.job_id, ctx.emit, ctx.idle)
        self._outer = ctx
        self._delegate = delegate

    def request_cancel(self) -> None:
        self._outer.request_cancel()

    @property
    def cancelled(self) -> bool:
        return self._outer.cancelled or self._delegate.lost

    def raise_if_cancelled(self) -> None:
        if self.cancelled:
            raise CancelledByUser()
