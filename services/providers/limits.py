"""Bounds on provider calls: a thread pool of their own per provider endpoint, and a deadline.

Why: provider calls block a thread while the provider works. On the event loop's default
executor a few hung calls used every thread, so an offline run of another user waited behind
them. Here each provider endpoint (the local provider; each OpenAI-compatible base URL) has
its own pool of ``PROVIDER_CONCURRENCY`` threads (`provider_pool`): a hung endpoint fills
only its own pool and queue, and nothing else waits for it.

Every call has a *total* deadline (`deadline_scope`), counted from the moment it was
submitted, queueing included: ``PROVIDER_CALL_DEADLINE_SECONDS`` (text and images) or
``PROVIDER_VIDEO_DEADLINE_SECONDS``. A call still queued at its deadline never starts; a call
in progress ends at it, because the HTTP client the adapters use (`deadline_http_client`)
bounds every connect, read and write by the time left. A provider trickling a byte just
often enough to satisfy a per-read timeout is therefore cut off at the deadline too. Both
cases end as a `ProviderError` with code ``timeout``; the caller releases the run's credits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

import httpcore2
import httpx2

from core.settings import get_settings
from services.providers.base import ProviderError, ProviderErrorCode

log = logging.getLogger(__name__)

T = TypeVar("T")

# time.monotonic() at which the current call must have ended; None outside any call.
_deadline: ContextVar[float | None] = ContextVar("provider_call_deadline", default=None)


# --- deadlines --------------------------------------------------------------------------------


def deadline_for(modality: str) -> float:
    """Seconds a call of this modality may take in total (from settings)."""
    settings = get_settings()
    if modality == "video":
        return settings.provider_video_deadline_seconds
    return settings.provider_call_deadline_seconds


def seconds_left() -> float | None:
    """Seconds until the current call's deadline (may be <= 0); None when there is none."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


def deadline_passed() -> bool:
    left = seconds_left()
    return left is not None and left <= 0


@contextmanager
def deadline_scope(*, seconds: float | None = None, at: float | None = None) -> Iterator[None]:
    """Run the block under a deadline (`seconds` from now, or monotonic time `at`).

    An enclosing deadline that ends sooner still applies: deadlines only ever get shorter.
    """
    candidates = [d for d in (_deadline.get(), at) if d is not None]
    if seconds is not None:
        candidates.append(time.monotonic() + seconds)
    token = _deadline.set(min(candidates) if candidates else None)
    try:
        yield
    finally:
        _deadline.reset(token)


def timeout_error(seconds: float | None = None) -> ProviderError:
    """The error of a call ended at its deadline, as the person running it reads it."""
    limit = f" within {seconds:g} seconds" if seconds else " in time"
    return ProviderError(
        ProviderErrorCode.timeout,
        f"The model provider did not finish{limit}, so the run was stopped. Your credits were "
        "returned; try again, or pick another model.",
    )


# --- pools ------------------------------------------------------------------------------------


class ProviderPool:
    """A fixed number of threads for one provider endpoint, and its queue."""

    def __init__(self, key: str, size: int):
        self.key = key
        self.size = size
        self._executor = ThreadPoolExecutor(
            max_workers=size, thread_name_prefix=f"provider[{key[:40]}]"
        )

    def submit(self, fn: Callable[..., T], /, *args: Any, deadline: float, **kwargs: Any):
        """Run `fn` on this pool under `deadline` (monotonic); a call dequeued late never starts.

        Returns:
            A `concurrent.futures.Future` for the result (or the call's exception).
        """

        def call() -> T:
            if time.monotonic() >= deadline:
                raise timeout_error()
            with deadline_scope(at=deadline):
                return fn(*args, **kwargs)

        future: Future[T] = self._executor.submit(call)
        return future


_pools: dict[str, ProviderPool] = {}
_pools_lock = threading.Lock()


def pool_key(adapter: Any) -> str:
    """Which pool an adapter's calls share: its `pool_key` (endpoint) or its name."""
    return str(getattr(adapter, "pool_key", None) or getattr(adapter, "name", "") or "provider")


def provider_pool(adapter: Any) -> ProviderPool:
    """The pool of the adapter's endpoint, created on first use (``PROVIDER_CONCURRENCY``)."""
    key = pool_key(adapter)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = ProviderPool(key, get_settings().provider_concurrency)
        return pool


# --- HTTP that respects the deadline ----------------------------------------------------------


def _bounded(timeout: float | None, error: type[Exception]) -> float | None:
    """`timeout` of one network operation, shortened to the time left before the deadline."""
    left = seconds_left()
    if left is None:
        return timeout
    if left <= 0:
        raise error("The provider call reached its deadline.")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore2.NetworkStream):
    """A connection whose every read and write ends by the current call's deadline."""

    def __init__(self, stream: httpcore2.NetworkStream):
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _bounded(timeout, httpcore2.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _bounded(timeout, httpcore2.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):  # noqa: ANN001
        bounded = _bounded(timeout, httpcore2.ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, bounded))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore2.NetworkBackend):
    def __init__(self, backend: httpcore2.NetworkBackend):
        self._backend = backend

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):  # noqa: ANN001
        bounded = _bounded(timeout, httpcore2.ConnectTimeout)
        stream = self._backend.connect_tcp(host, port, bounded, local_address, socket_options)
        return _DeadlineStream(stream)

    def connect_unix_socket(self, path, timeout=None, socket_options=None):  # noqa: ANN001
        bounded = _bounded(timeout, httpcore2.ConnectTimeout)
        return _DeadlineStream(self._backend.connect_unix_socket(path, bounded, socket_options))

    def sleep(self, seconds: float) -> None:
        left = seconds_left()
        self._backend.sleep(seconds if left is None else max(0.0, min(seconds, left)))


def _bound_transport(transport: Any) -> bool:
    """Route a transport's connections through the deadline backend; False if it cannot."""
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if backend is None:
        return False
    if not isinstance(backend, _DeadlineBackend):
        pool._network_backend = _DeadlineBackend(backend)
    return True


def deadline_http_client(*, timeout: float) -> httpx2.Client:
    """An HTTP client whose calls end at the current call's deadline (see module docstring).

    `timeout` is the per-operation timeout (connect, each read, each write); the deadline
    bounds the whole call. Proxies from the environment are kept.
    """
    client = httpx2.Client(timeout=timeout, follow_redirects=True)
    transports = [client._transport, *client._mounts.values()]  # noqa: SLF001
    if not all(_bound_transport(t) for t in transports if t is not None):
        # The pool-side deadline still ends the run on time; the thread is freed later.
        log.warning("provider HTTP calls are not bounded by their deadline (httpx2 changed)")
    return client
