"""A process-wide token bucket per hosted account, and the 429 wait-and-retry around it.

RunComfy allows one request per second per account on average with small bursts and answers
429 above that (docs/WIRE.md §2.1). Every RunComfy caller in the process (machine back end,
Serverless back end, CLI, host panels) shares one bucket, so two panels cannot together overrun
the account.
A 429 never fails a job: everyone waits (Retry-After when given) and the call is repeated.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import requests

from ..errors import CancelledByUser, RateLimited

log = logging.getLogger(__name__)

Cancelled = Callable[[], bool]
SLICE = 0.25  # longest sleep between two looks at the cancel flag


def never() -> bool:
    return False


class TokenBucket:
    """`rate` requests per second on average, up to `burst` back to back."""

    def __init__(self, rate: float = 1.0, burst: int = 3) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._stamp = time.monotonic()
        self._hold_until = 0.0  # after a 429 nobody sends until then
        self._lock = threading.Lock()

    def configure(self, rate: float, burst: int) -> None:
        with self._lock:
            self.rate, self.burst = rate, burst
            self._tokens = min(self._tokens, float(burst))

    def _take(self) -> float:
        """Take a token and return 0, or return how long to wait for one."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if now < self._hold_until:
                return self._hold_until - now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return 0.0
            return (1.0 - self._tokens) / self.rate

    def acquire(self, cancelled: Cancelled = never) -> None:
        """Block until a request may be sent; raise CancelledByUser if cancelled meanwhile."""
        while (delay := self._take()) > 0:
            sleep(delay, cancelled)

    def hold(self, seconds: float) -> None:
        """The server said 429: make every caller of this bucket wait `seconds`."""
        with self._lock:
            self._hold_until = max(self._hold_until, time.monotonic() + seconds)
            self._tokens = 0.0


def sleep(seconds: float, cancelled: Cancelled = never) -> None:
    """Sleep in short slices so a Cancel is noticed within SLICE seconds."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if cancelled():
            raise CancelledByUser()
        time.sleep(min(SLICE, left))
    if cancelled():
        raise CancelledByUser()


_buckets: dict[str, TokenBucket] = {}
_buckets_lock = threading.Lock()
# RunComfy documents 1 request/s per account with "some bursts": stay a little under, so
# network jitter does not turn into 429s. ComfyICU documents no limit: a polite [guess]
# (docs/WIRE.md §2.1, §4.1).
DEFAULTS = {"runcomfy": (0.95, 2), "comfyicu": (5.0, 10)}


def bucket(name: str) -> TokenBucket:
    """The one bucket of this process for `name` (an account or service)."""
    with _buckets_lock:
        if name not in _buckets:
            _buckets[name] = TokenBucket(*DEFAULTS.get(name, (1.0, 3)))
        return _buckets[name]


def configure(name: str, rate: float, burst: int) -> None:
    """Set the limit for `name` from now on (test servers allow more than the services)."""
    with _buckets_lock:
        DEFAULTS[name] = (rate, burst)
        _buckets.pop(name, None)


class RetryPolicy:
    """How long to wait after a 429 without Retry-After, and for how long in total."""

    def __init__(
        self, first: float = 1.0, factor: float = 2.0, cap: float = 30.0, total: float = 600.0
    ) -> None:
        self.first, self.factor, self.cap, self.total = first, factor, cap, total

    def delay(self, attempt: int) -> float:
        return min(self.cap, self.first * self.factor**attempt)


DEFAULT_POLICY = RetryPolicy()


def retry_after(response: requests.Response) -> float | None:
    """Seconds from a Retry-After header (delta-seconds, fractions tolerated); None if absent."""
    value = response.headers.get("Retry-After", "").strip()
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: rare; the backoff is good enough


def send_limited(
    send: Callable[[], requests.Response],
    limiter: TokenBucket,
    *,
    cancelled: Cancelled = never,
    policy: RetryPolicy = DEFAULT_POLICY,
    service: str = "service",
) -> requests.Response:
    """Send through the bucket; on 429 wait and send again, for at most policy.total seconds.

    `send` must accept 429 (not raise for it). Repeating is safe: a 429 means the server
    did not act on the request.
    """
    waited = 0.0
    attempt = 0
    while True:
        limiter.acquire(cancelled)
        response = send()
        if response.status_code != 429:
            return response
        delay = retry_after(response)
        delay = policy.delay(attempt) if delay is None else delay
        attempt += 1
        if waited + delay > policy.total:
            raise RateLimited(
                f"The {service} kept refusing requests as too many (429) for "
                f"{waited:.0f} s. Wait a few minutes and try again.",
                429,
            )
        log.info("%s rate limit (429): waiting %.2f s", service, delay)
        limiter.hold(delay)
        sleep(delay, cancelled)
        waited += delay
