"""The public OpenAI-compatible API under /v1 (Starlette routes mounted on Reflex's backend).

Bodies follow OpenAI's API, so the official `openai` SDK works with `base_url=<backend>/v1`.
Every response carries `x-request-id`; every error is
`{"error": {"code", "type", "message", "param", "request_id", "details", "doc_url"}}` with the
code's HTTP status from the catalogue (`services/error_codes.py`). Each request writes one row
of the request log. The rules live in `services/api_keys.py` and `services/api_requests.py`;
this module turns HTTP into calls of them and their answers and errors back into HTTP.

Database work runs on a small pool of its own, never on the event loop; a run's provider call
runs on its provider's pool (waited for by a thread of `_RUN_WAITERS`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter
from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core import db, routes
from core.settings import get_settings
from models import Generation
from services import api_keys, api_requests
from services.api_keys import ApiPrincipal
from services.api_requests import LogRecord, StartedRun
from services.error_codes import Code, error_code_info
from services.errors import DomainError, error_with_code

log = logging.getLogger("creative_studio.api.v1")

PREFIX = "/v1"
MAX_BODY_BYTES = 1_000_000
STREAM_PING_SECONDS = 15
RATE_KEY_PREFIX = "cs-api-rate"

T = TypeVar("T")

_DB = ThreadPoolExecutor(max_workers=8, thread_name_prefix="api-db")
_RUN_WAITERS = ThreadPoolExecutor(max_workers=64, thread_name_prefix="api-run")


async def _in_db(work: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    return await asyncio.wrap_future(_DB.submit(work, *args, **kwargs))


# --- errors -----------------------------------------------------------------------------------

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def error_body(error: DomainError, request_id: str) -> dict[str, Any]:
    """The error envelope of one request."""
    try:
        info = error_code_info(error.code)
        doc_url = routes.absolute(get_settings().app_base_url, routes.help_article(info.help_slug))
    except (KeyError, ValueError):
        doc_url = routes.absolute(get_settings().app_base_url, routes.HELP)
    details = {k: v for k, v in (error.details or {}).items() if k not in ("param", "field")}
    param = (error.details or {}).get("param") or (error.details or {}).get("field")
    status = error.http_status
    return {
        "error": {
            "code": error.code,
            "type": _TYPES.get(status, "api_error"),
            "message": error.message,
            "param": param,
            "request_id": request_id,
            "details": details,
            "doc_url": doc_url,
        }
    }


def _error_response(error: DomainError, record: LogRecord, headers: dict[str, str]) -> JSONResponse:
    record.status_code = error.http_status
    record.error_code = error.code
    return JSONResponse(
        error_body(error, record.request_id), status_code=error.http_status, headers=headers
    )


# --- rate limit -------------------------------------------------------------------------------


class KeyRateLimiter:
    """Requests per minute per API key (`limits`: Redis when REDIS_URL is set, else memory)."""

    def __init__(self, redis_url: str = ""):
        storage: Storage
        if redis_url:
            storage = RedisStorage(
                f"async+{redis_url}", implementation="redispy", key_prefix=RATE_KEY_PREFIX
            )
            self._limiter = SlidingWindowCounterRateLimiter(storage)
        else:
            storage = MemoryStorage()
            self._limiter = MovingWindowRateLimiter(storage)

    async def hit(self, key: str, per_minute: int) -> tuple[bool, int, float]:
        """(allowed, remaining, seconds until a request is free again) for one API key.

        `key` names the key by id and its random prefix, so databases that reuse ids (test
        runs, deployments) sharing one Redis never count each other's requests.
        """
        item = RateLimitItemPerMinute(per_minute)
        try:
            allowed = await self._limiter.hit(item, "key", key)
            stats = await self._limiter.get_window_stats(item, "key", key)
        except Exception:  # noqa: BLE001 - fail open: the API keeps serving without its limiter
            log.warning("API rate-limit storage unavailable; request of key %s let through", key)
            return True, per_minute, 0.0
        return allowed, max(0, stats.remaining), max(0.0, stats.reset_time - time.time())


_limiter: KeyRateLimiter | None = None


def _rate_limiter() -> KeyRateLimiter:
    global _limiter
    if _limiter is None:
        _limiter = KeyRateLimiter(get_settings().redis_url)
    return _limiter


def reset_rate_limiter() -> None:
    """Forget the counters (tests; a configuration change)."""
    global _limiter
    _limiter = None


# --- the request skeleton ---------------------------------------------------------------------


class Call:
    """One API request: its id, log record, caller and response headers."""

    def __init__(self, request: Request):
        self.request = request
        self.record = LogRecord(
            request_id=api_requests.new_request_id(),
            method=request.method,
            path=request.url.path,
        )
        self.headers: dict[str, str] = {"x-request-id": self.record.request_id}
        self.principal: ApiPrincipal | None = None
        self.deferred_log = False  # a stream writes its row when it ends

    async def authenticate(self, scope: str | None = None) -> ApiPrincipal:
        header = self.request.headers.get("authorization", "")
        secret = header[7:].strip() if header[:7].lower() == "bearer " else None
        principal = await _in_db(_authenticate, secret, scope)
        self.principal = principal
        self.record.org_id, self.record.api_key_id = principal.org_id, principal.key_id
        per_minute = principal.rate_limit_per_minute or get_settings().api_rate_limit_per_minute
        if per_minute:
            allowed, remaining, reset = await _rate_limiter().hit(
                f"{principal.key_id}:{principal.key_prefix}", per_minute
            )
            self.headers.update(
                {
                    "x-ratelimit-limit-requests": str(per_minute),
                    "x-ratelimit-remaining-requests": str(remaining),
                    "x-ratelimit-reset-requests": f"{max(1, int(reset + 0.999))}s",
                }
            )
            if not allowed:
                wait = max(1, int(reset + 0.999))
                self.headers["retry-after"] = str(wait)
                raise error_with_code(
                    Code.rate_limited,
                    f"This API key made more than {per_minute} requests in the last minute. "
                    f"Wait {wait} seconds and retry; an owner or admin can raise the key's limit.",
                    limit_per_minute=per_minute,
                    retry_after_seconds=wait,
                )
        return principal

    async def json_body(self) -> Any:
        declared = self.request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise _too_large()
        raw = bytearray()
        async for chunk in self.request.stream():
            raw.extend(chunk)
            if len(raw) > MAX_BODY_BYTES:
                raise _too_large()
        try:
            return json.loads(bytes(raw).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise error_with_code(
                Code.invalid_request,
                "The request body is not valid JSON. Send a JSON object with "
                "Content-Type: application/json.",
            ) from None

    async def json_or_form_body(self) -> Any:
        """JSON, or a multipart/urlencoded form (the SDK sends video creates as a form)."""
        kind = self.request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind not in ("multipart/form-data", "application/x-www-form-urlencoded"):
            return await self.json_body()
        declared = self.request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise _too_large()
        try:
            form = await self.request.form(max_files=1, max_fields=50)
        except Exception:  # noqa: BLE001 - a broken form is the client's to fix
            raise error_with_code(
                Code.invalid_request, "The form body could not be read."
            ) from None
        body: dict[str, Any] = {}
        for name, value in form.multi_items():
            body[name] = value if isinstance(value, str) else "<file>"
        return body

    def json(self, body: Any, status: int = 200) -> JSONResponse:
        return JSONResponse(body, status_code=status, headers=self.headers)


def _too_large() -> DomainError:
    return error_with_code(
        Code.invalid_request,
        f"The request body is larger than {MAX_BODY_BYTES:,} bytes. Send less text.",
        http_status=413,
    )


def _authenticate(secret: str | None, scope: str | None) -> ApiPrincipal:
    with db.new_session() as session:
        principal = api_keys.api_key_authenticate(session=session, secret=secret)
        if scope is not None:
            api_keys.api_scope_require(session=session, principal=principal, scope=scope)
        session.commit()
        return principal


def endpoint(
    work: Callable[[Call], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a route: request id, error envelope, never a 500 page, one log row."""

    async def route(request: Request) -> Response:
        call = Call(request)
        started = time.monotonic()
        try:
            response = await work(call)
            call.record.status_code = response.status_code
        except DomainError as error:
            response = _error_response(error, call.record, call.headers)
        except Exception:  # noqa: BLE001 - a bug answers with the envelope and the request id
            log.exception("API request %s failed", call.record.request_id)
            error = error_with_code(
                Code.error,
                "Something went wrong on our side. Retry; if it keeps failing, contact support "
                "with the request id.",
                http_status=500,
            )
            response = _error_response(error, call.record, call.headers)
        if not call.deferred_log:
            call.record.duration_ms = int((time.monotonic() - started) * 1000)
            try:
                await _in_db(api_requests.request_log_write, call.record)
            except Exception:  # noqa: BLE001 - the answer matters more than its log row
                log.exception("request log row %s not written", call.record.request_id)
        return response

    return route


# --- models -----------------------------------------------------------------------------------


def _with_session(work: Callable[..., T], /, **kwargs: Any) -> T:
    with db.new_session() as session:
        result = work(session=session, **kwargs)
        session.commit()
        return result


@endpoint
async def list_models(call: Call) -> Response:
    principal = await call.authenticate()
    return call.json(await _in_db(_with_session, api_requests.models_list, principal=principal))


@endpoint
async def retrieve_model(call: Call) -> Response:
    principal = await call.authenticate()
    model_key = call.request.path_params["model"]
    call.record.model_key = model_key[:64]
    body = await _in_db(
        _with_session, api_requests.model_retrieve, principal=principal, model_key=model_key
    )
    return call.json(body)


# --- runs -------------------------------------------------------------------------------------


def _start(
    principal: ApiPrincipal,
    *,
    scope: str,
    model: str,
    prompt: str,
    params: dict,
    request_id: str,
    claim: bool,
    idempotency_key: str | None = None,
) -> StartedRun:
    with db.new_session() as session:
        return api_requests.run_start(
            session=session,
            principal=principal,
            scope=scope,
            model_key=model,
            prompt=prompt,
            params=params,
            request_id=request_id,
            claim=claim,
            idempotency_key=idempotency_key,
        )


async def _run(generation_id: int) -> Generation:
    return await asyncio.wrap_future(_RUN_WAITERS.submit(api_requests.run_execute, generation_id))


def _note_run(call: Call, started: StartedRun, generation: Generation | None = None) -> None:
    call.record.model_key = started.requested_model_key
    call.record.generation_id = started.generation_id
    call.headers["x-generation-id"] = started.public_id
    if generation is not None:
        call.record.millicredits = generation.charged_millicredits


@endpoint
async def chat_completions(call: Call) -> Response:
    principal = await call.authenticate(api_keys.SCOPE_CHAT_WRITE)
    body = await call.json_body()
    if isinstance(body, dict) and isinstance(body.get("model"), str):
        call.record.model_key = body["model"][:64]
    parsed = api_requests.chat_request_parse(body)
    call.record.stream = parsed.stream
    started = await _in_db(
        _start,
        principal,
        scope=api_keys.SCOPE_CHAT_WRITE,
        model=parsed.model,
        prompt=parsed.prompt,
        params={"length": parsed.length},
        request_id=call.record.request_id,
        claim=True,
    )
    _note_run(call, started)
    if parsed.stream:
        return _stream(call, started)
    generation = await _run(started.generation_id)
    _note_run(call, started, generation)
    return call.json(api_requests.chat_completion_body(generation, started))


def _chunk(started: StartedRun, delta: dict, finish: str | None = None, **extra: Any) -> str:
    return json.dumps(
        {
            "id": f"chatcmpl-{started.public_id}",
            "object": "chat.completion.chunk",
            "created": started.created,
            "model": started.requested_model_key,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
    )


def _stream(call: Call, started: StartedRun) -> Response:
    """SSE: a role chunk, text chunks, a last chunk with usage and credits, then [DONE].

    A failure after the first byte is an error event then [DONE]; a client that goes away
    stops the run at its next piece, which settles for what was produced.
    """
    call.deferred_log = True
    record = call.record
    began = time.monotonic()
    stop = threading.Event()
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    def put(item: tuple[str, Any]) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the loop is gone (server stopping): nobody is listening
            stop.set()

    future: Future = _RUN_WAITERS.submit(
        api_requests.run_execute,
        started.generation_id,
        on_delta=lambda piece: put(("delta", piece)),
        stop=stop,
    )
    future.add_done_callback(lambda _f: put(("done", None)))

    def write_log(finished: Future) -> None:
        generation = None if finished.cancelled() or finished.exception() else finished.result()
        if generation is not None:
            record.millicredits = generation.charged_millicredits
            if generation.status != "succeeded":
                record.error_code = api_requests.run_failure_error(generation).code
        elif record.error_code is None:
            record.error_code = Code.error.value
        record.duration_ms = int((time.monotonic() - began) * 1000)
        try:
            api_requests.request_log_write(record)
        except Exception:  # noqa: BLE001
            log.exception("request log row %s not written", record.request_id)

    async def events():
        try:
            yield {"data": _chunk(started, {"role": "assistant", "content": ""})}
            while True:
                kind, piece = await queue.get()
                if kind == "done":
                    break
                yield {"data": _chunk(started, {"content": piece})}
            try:
                generation = future.result()
                body = api_requests.chat_completion_body(generation, started)
                yield {
                    "data": _chunk(
                        started,
                        {},
                        "stop",
                        usage=body["usage"],
                        credits_charged=body["credits_charged"],
                        generation_id=started.public_id,
                    )
                }
            except DomainError as error:
                yield {"data": json.dumps(error_body(error, record.request_id))}
            except Exception:  # noqa: BLE001
                log.exception("stream %s failed", record.request_id)
                error = error_with_code(
                    Code.error, "The stream failed on our side.", http_status=500
                )
                yield {"data": json.dumps(error_body(error, record.request_id))}
            yield {"data": "[DONE]"}
        finally:
            stop.set()  # the client left (or the stream ended): stop at the next piece
            future.add_done_callback(write_log)

    record.status_code = 200
    return EventSourceResponse(events(), ping=STREAM_PING_SECONDS, headers=call.headers)


@endpoint
async def images_generations(call: Call) -> Response:
    principal = await call.authenticate(api_keys.SCOPE_IMAGES_WRITE)
    body = await call.json_body()
    if isinstance(body, dict) and isinstance(body.get("model"), str):
        call.record.model_key = body["model"][:64]
    parsed = api_requests.image_request_parse(body)
    started = await _in_db(
        _start,
        principal,
        scope=api_keys.SCOPE_IMAGES_WRITE,
        model=parsed.model,
        prompt=parsed.prompt,
        params={"aspect": parsed.aspect, "count": parsed.count},
        request_id=call.record.request_id,
        claim=True,
    )
    _note_run(call, started)
    generation = await _run(started.generation_id)
    _note_run(call, started, generation)
    base = str(call.request.base_url).rstrip("/")
    answer = await _in_db(
        api_requests.images_body,
        generation,
        started,
        parsed.response_format,
        lambda asset_id: f"{base}{PREFIX}/assets/{asset_id}",
    )
    return call.json(answer)


@endpoint
async def videos_create(call: Call) -> Response:
    principal = await call.authenticate(api_keys.SCOPE_VIDEOS_WRITE)
    body = await call.json_or_form_body()
    if isinstance(body, dict) and isinstance(body.get("model"), str):
        call.record.model_key = body["model"][:64]
    parsed = api_requests.video_request_parse(body)
    idempotency_key = call.request.headers.get("idempotency-key")
    started = await _in_db(
        _start,
        principal,
        scope=api_keys.SCOPE_VIDEOS_WRITE,
        model=parsed.model,
        prompt=parsed.prompt,
        params={"aspect": parsed.aspect, "seconds": parsed.seconds},
        request_id=call.record.request_id,
        claim=False,
        idempotency_key=idempotency_key,
    )
    _note_run(call, started)
    if started.replayed:
        call.headers["idempotent-replayed"] = "true"
    answer = await _in_db(_video_answer, principal, started.public_id)
    return call.json(answer)


def _video_answer(principal: ApiPrincipal, public_id: str) -> dict:
    with db.new_session() as session:
        return api_requests.video_get(session=session, principal=principal, public_id=public_id)


@endpoint
async def videos_retrieve(call: Call) -> Response:
    principal = await call.authenticate(api_keys.SCOPE_VIDEOS_WRITE)
    answer = await _in_db(_video_answer, principal, call.request.path_params["video_id"])
    return call.json(answer)


def _content_response(call: Call, content: api_requests.Content) -> Response:
    return Response(
        content.data,
        media_type=content.content_type,
        headers={
            **call.headers,
            "Content-Disposition": f'attachment; filename="{content.filename}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


@endpoint
async def videos_content(call: Call) -> Response:
    principal = await call.authenticate(api_keys.SCOPE_VIDEOS_WRITE)
    content = await _in_db(
        _with_session,
        api_requests.video_content,
        principal=principal,
        public_id=call.request.path_params["video_id"],
    )
    return _content_response(call, content)


@endpoint
async def asset_content(call: Call) -> Response:
    principal = await call.authenticate()
    content = await _in_db(
        _with_session,
        api_requests.asset_content,
        principal=principal,
        asset_public_id=call.request.path_params["asset_id"],
    )
    return _content_response(call, content)


@endpoint
async def usage(call: Call) -> Response:
    principal = await call.authenticate(api_keys.SCOPE_USAGE_READ)
    days = call.request.query_params.get("days", "30")
    return call.json(
        await _in_db(_with_session, api_requests.usage_summary, principal=principal, days=days)
    )


@endpoint
async def not_found(call: Call) -> Response:
    raise error_with_code(
        Code.not_found,
        f"There is no API route {call.request.method} {call.request.url.path}. See the API "
        "quickstart in the help center.",
    )


def v1_routes() -> list[Route]:
    return [
        Route(f"{PREFIX}/models", list_models, methods=["GET"]),
        Route(f"{PREFIX}/models/{{model:path}}", retrieve_model, methods=["GET"]),
        Route(f"{PREFIX}/chat/completions", chat_completions, methods=["POST"]),
        Route(f"{PREFIX}/images/generations", images_generations, methods=["POST"]),
        Route(f"{PREFIX}/videos", videos_create, methods=["POST"]),
        Route(f"{PREFIX}/videos/{{video_id}}", videos_retrieve, methods=["GET"]),
        Route(f"{PREFIX}/videos/{{video_id}}/content", videos_content, methods=["GET"]),
        Route(f"{PREFIX}/assets/{{asset_id}}", asset_content, methods=["GET"]),
        Route(f"{PREFIX}/usage", usage, methods=["GET"]),
        Route(
            f"{PREFIX}/{{rest:path}}", not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]
        ),
    ]


def build_v1_api() -> Starlette:
    """The /v1 routes; Reflex mounts its backend inside (api_transformer)."""
    return Starlette(routes=v1_routes())
