"""What the public `/v1` API does, over the same services as Studio; no HTTP here.

Every run goes through `services.generations`: the same blockers (email, role, billing
profile, subscription, plan locks, disabled or swapped models, credits, spend cap, runs in
progress), the same hold at start, settle on success and release on failure, and a usage event
with source ``api`` (the generation carries the key and the request id).

Chat completions and images answer in the request, so the request runs its generation itself:
`run_start` holds and claims it (``queued -> running`` with this process's worker lease) in
one transaction; the task the run executor is handed finds it running and skips it. If this
process dies mid-call the lease runs out and `run_engine.runs_recover` releases the hold once.
Videos run on the run executor like Studio's runs; the request returns at once and the client
polls. An ``Idempotency-Key`` makes a retried create return the first run (unique per key).

A streamed chat whose client goes away stops at the next piece of text: the run settles for
the prompt and the text produced so far (never above its hold), through the same settle path.

Request log: one row per request (`request_log_write`), success or failure, without prompt
or output text. Rows older than `LOG_RETENTION_DAYS` are deleted by a job
(`request_logs_purge`).
"""

from __future__ import annotations

import csv
import io
import math
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import case, delete, func, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core import db
from core.clock import as_utc, utcnow
from core.settings import get_settings
from models import (
    ApiIdempotencyKey,
    ApiKey,
    Asset,
    CreditLedgerEntry,
    Generation,
    RequestLog,
    UsageEvent,
)
from models.enums import GenerationStatus
from services import api_keys, credits, generations, policy, pricing, run_engine
from services import models_registry as registry
from services.api_keys import ApiPrincipal
from services.error_codes import Code
from services.errors import DomainError, NotFound, ValidationFailed, error_with_code
from services.generations import GenerationBlocked
from services.providers.base import Provider, ProviderError, ProviderResult, TextDelta
from services.providers.factory import provider_for
from services.storage import storage_for

LOG_RETENTION_DAYS = 30
MAX_LOG_PAGE = 200
MAX_CSV_ROWS = 50_000
CHARS_PER_TOKEN = 4
MAX_MESSAGES = 100
MAX_IDEMPOTENCY_KEY = 255
_MODEL_CODES = {
    Code.model_locked.value,
    Code.model_disabled.value,
    Code.model_not_configured.value,
    Code.model_not_found.value,
}
# OpenAI parameters a client may send that this API accepts and does not act on.
_CHAT_IGNORED = {
    "temperature",
    "top_p",
    "n",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "user",
    "seed",
    "stream_options",
    "response_format",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "logprobs",
    "top_logprobs",
    "metadata",
    "store",
    "service_tier",
    "modalities",
    "reasoning_effort",
}
_CHAT_FIELDS = {
    "model",
    "messages",
    "stream",
    "max_tokens",
    "max_completion_tokens",
} | _CHAT_IGNORED
_IMAGE_FIELDS = {
    "model",
    "prompt",
    "n",
    "size",
    "response_format",
    "quality",
    "style",
    "user",
    "background",
    "output_format",
    "moderation",
}
_VIDEO_FIELDS = {"model", "prompt", "seconds", "size", "input_reference"}
_IMAGE_SIZES = {
    "1024x1024": "1:1",
    "512x512": "1:1",
    "256x256": "1:1",
    "1792x1024": "16:9",
    "1536x1024": "16:9",
    "1024x1792": "9:16",
    "1024x1536": "9:16",
    "auto": "1:1",
}
_VIDEO_SIZES = {"1280x720": "16:9", "1920x1080": "16:9", "720x1280": "9:16", "1080x1920": "9:16"}


def new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


def _invalid(message: str, param: str | None = None) -> DomainError:
    return error_with_code(Code.invalid_request, message, param=param)


def api_error_from(error: DomainError) -> DomainError:
    """The API's form of a service error: model refusals become ``model_not_available``,
    validation becomes ``invalid_request`` (naming the parameter); others keep their code."""
    if isinstance(error, GenerationBlocked) and error.code in _MODEL_CODES:
        first = error.blockers[0]
        return error_with_code(
            Code.model_not_available,
            first.message,
            reason=first.code,
            **{k: v for k, v in first.details.items() if k == "plan_needed"},
        )
    if error.code in _MODEL_CODES:
        return error_with_code(Code.model_not_available, error.message, reason=error.code)
    if isinstance(error, ValidationFailed):
        return _invalid(error.message, error.field)
    if isinstance(error, GenerationBlocked):
        first = error.blockers[0]
        wrapped = error_with_code(first.code, first.message, **first.details)
        wrapped.http_status = error.http_status
        return wrapped
    return error


# --- models -----------------------------------------------------------------------------------


def _model_object(item: Any) -> dict[str, Any]:
    return {
        "id": item.key,
        "object": "model",
        "created": 0,
        "owned_by": "creative-studio" if item.provider == "local" else "provider",
        "name": item.display_name,
        "modality": item.modality,
        "credit_rate": {
            "credits": item.rate_millicredits / 1000,
            "unit": item.rate_unit,
            "label": item.rate_label,
        },
        **({"replaced_by": item.swapped_to_key} if item.swapped_to_key else {}),
    }


def models_list(*, session: Session, principal: ApiPrincipal) -> dict[str, Any]:
    """`GET /v1/models`: the models this key may use now, each with its credit rate."""
    api_keys.api_scope_require(
        session=session, principal=principal, scope=api_keys.SCOPE_MODELS_READ
    )
    items = api_keys.api_models_for_key(session=session, principal=principal)
    return {"object": "list", "data": [_model_object(item) for item, reason in items if not reason]}


def _model_refusal(item: Any, reason: str) -> DomainError:
    details: dict[str, Any] = {"model": item.key}
    if item.state == "locked":
        details["plan_needed"] = item.min_plan_key
        details["plan_needed_name"] = item.min_plan_name
    return error_with_code(Code.model_not_available, reason, **details)


def _usable_model(session: Session, principal: ApiPrincipal, model_key: Any, param: str = "model"):
    if not isinstance(model_key, str) or not model_key.strip() or len(model_key) > 64:
        raise _invalid("'model' is required: a model id from GET /v1/models.", param)
    for item, reason in api_keys.api_models_for_key(session=session, principal=principal):
        if item.key == model_key:
            if reason:
                raise _model_refusal(item, reason)
            return item
    raise error_with_code(
        Code.model_not_available,
        f"There is no model called {model_key!r}. List the models you may use with GET /v1/models.",
        model=model_key,
    )


def model_retrieve(*, session: Session, principal: ApiPrincipal, model_key: str) -> dict[str, Any]:
    """`GET /v1/models/{id}`; a model the key may not use is ``model_not_available``."""
    api_keys.api_scope_require(
        session=session, principal=principal, scope=api_keys.SCOPE_MODELS_READ
    )
    return _model_object(_usable_model(session, principal, model_key))


# --- request bodies ---------------------------------------------------------------------------


def _check_fields(body: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _invalid("The request body must be a JSON object.")
    for name in body:
        if name not in allowed:
            raise _invalid(
                f"Unrecognized request argument supplied: {str(name)[:64]}.", str(name)[:64]
            )
    return body


def _text_of(content: Any, index: int) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if (
                not isinstance(part, dict)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
            ):
                raise _invalid(
                    "Message content parts must be text parts ({'type': 'text', 'text': ...}).",
                    f"messages[{index}].content",
                )
            parts.append(part["text"])
        return "\n".join(parts)
    raise _invalid(
        "Message content must be a string or a list of text parts.", f"messages[{index}].content"
    )


def _bool(value: Any, param: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _invalid(f"'{param}' must be true or false.", param)
    return value


def _max_tokens(value: Any, param: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100_000:
        raise _invalid(f"'{param}' must be a whole number from 1 to 100000.", param)
    return value


@dataclass(frozen=True)
class ChatRequest:
    model: str
    prompt: str
    stream: bool
    length: str


def chat_request_parse(body: Any) -> ChatRequest:
    """A chat completion request in OpenAI's shape, validated (`invalid_request` otherwise)."""
    body = _check_fields(body, _CHAT_FIELDS)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _invalid("'messages' must be a non-empty list of {role, content}.", "messages")
    if len(messages) > MAX_MESSAGES:
        raise _invalid(f"At most {MAX_MESSAGES} messages are accepted.", "messages")
    lines = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _invalid(
                "Each message must be an object with role and content.", f"messages[{index}]"
            )
        role = message.get("role")
        if role not in ("system", "developer", "user", "assistant"):
            raise _invalid(
                "A message role must be system, developer, user or assistant.",
                f"messages[{index}].role",
            )
        text = _text_of(message.get("content"), index)
        lines.append((role, text))
    if len(lines) == 1 and lines[0][0] == "user":
        prompt = lines[0][1]
    else:
        prompt = "\n".join(f"{role.capitalize()}: {text}" for role, text in lines)
    if not prompt.strip():
        raise _invalid("The messages are empty: write what you want.", "messages")
    if len(prompt) > generations.MAX_PROMPT_CHARS:
        raise _invalid(
            f"The messages are {len(prompt):,} characters; the limit is "
            f"{generations.MAX_PROMPT_CHARS:,}. Shorten them and try again.",
            "messages",
        )
    limit = _max_tokens(body.get("max_completion_tokens"), "max_completion_tokens") or _max_tokens(
        body.get("max_tokens"), "max_tokens"
    )
    length = "medium"
    if limit is not None:
        length = "short" if limit <= 500 else "medium" if limit <= 750 else "long"
    model = body.get("model")
    if not isinstance(model, str) or not model.strip() or len(model) > 64:
        raise _invalid("'model' is required: a model id from GET /v1/models.", "model")
    return ChatRequest(
        model=model, prompt=prompt, stream=_bool(body.get("stream"), "stream"), length=length
    )


def _prompt_field(body: dict[str, Any]) -> str:
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise _invalid("'prompt' is required: describe what you want.", "prompt")
    if len(prompt) > generations.MAX_PROMPT_CHARS:
        raise _invalid(
            f"The prompt is {len(prompt):,} characters; the limit is {generations.MAX_PROMPT_CHARS:,}.",
            "prompt",
        )
    return prompt


@dataclass(frozen=True)
class ImageRequest:
    model: str
    prompt: str
    count: int
    aspect: str
    response_format: str


def image_request_parse(body: Any) -> ImageRequest:
    body = _check_fields(body, _IMAGE_FIELDS)
    prompt = _prompt_field(body)
    count = body.get("n", 1)
    if count is None:
        count = 1
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 10:
        raise _invalid("'n' must be a whole number from 1 to 10.", "n")
    size = body.get("size") or "1024x1024"
    if not isinstance(size, str) or size not in _IMAGE_SIZES:
        raise _invalid(f"'size' must be one of {', '.join(_IMAGE_SIZES)}.", "size")
    response_format = body.get("response_format") or "b64_json"
    if response_format not in ("b64_json", "url"):
        raise _invalid("'response_format' must be b64_json or url.", "response_format")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip() or len(model) > 64:
        raise _invalid("'model' is required: an image model id from GET /v1/models.", "model")
    return ImageRequest(model, prompt, count, _IMAGE_SIZES[size], response_format)


@dataclass(frozen=True)
class VideoRequest:
    model: str
    prompt: str
    seconds: int
    aspect: str


def video_request_parse(body: Any) -> VideoRequest:
    body = _check_fields(body, _VIDEO_FIELDS)
    prompt = _prompt_field(body)
    if body.get("input_reference") is not None:
        raise _invalid("Reference images are not supported; send a prompt only.", "input_reference")
    seconds = body.get("seconds", 6)
    if isinstance(seconds, str) and seconds.strip().isdigit():
        seconds = int(seconds.strip())
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not 1 <= seconds <= 60:
        raise _invalid("'seconds' must be a whole number from 1 to 60.", "seconds")
    size = body.get("size") or "1280x720"
    if not isinstance(size, str) or size not in _VIDEO_SIZES:
        raise _invalid(f"'size' must be one of {', '.join(_VIDEO_SIZES)}.", "size")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip() or len(model) > 64:
        raise _invalid("'model' is required: a video model id from GET /v1/models.", "model")
    return VideoRequest(model, prompt, seconds, _VIDEO_SIZES[size])


# --- starting runs ----------------------------------------------------------------------------


def _lock_key(session: Session, key_id: int) -> None:
    """Serialize this key's run starts (its daily cap counts runs of the same key)."""
    session.exec(select(ApiKey.id).where(ApiKey.id == key_id).with_for_update()).first()


def _day_start() -> datetime:
    now = utcnow()
    return datetime.combine(now.date(), time.min, tzinfo=now.tzinfo)


def key_spent_today(*, session: Session, key_id: int) -> int:
    """Millicredits this key spent or holds since 00:00 UTC (failed runs count 0)."""
    amount = case(
        (
            col(Generation.status) == GenerationStatus.succeeded.value,
            col(Generation.charged_millicredits),
        ),
        (col(Generation.status) == GenerationStatus.failed.value, 0),
        else_=col(Generation.held_millicredits),
    )
    total = session.exec(
        select(func.coalesce(func.sum(amount), 0)).where(
            Generation.api_key_id == key_id, col(Generation.created_at) >= _day_start()
        )
    ).one()
    return int(total or 0)


def _daily_cap_check(
    session: Session, principal: ApiPrincipal, model: Any, params: dict, prompt: str
) -> None:
    if principal.daily_cap_credits is None:
        return
    rated = registry.model_get(session=session, key=model.resolved_key)
    estimate = pricing.estimate_credits(
        rated, {**generations.normalize_params(rated.modality, params), "prompt": prompt}
    )
    spent = key_spent_today(session=session, key_id=principal.key_id)
    cap = principal.daily_cap_credits * 1000
    if spent + estimate > cap:
        raise error_with_code(
            Code.daily_cap_reached,
            f"This API key's daily cap of {credits.format_credits(cap)} credits would be passed: "
            f"{credits.format_credits(spent)} are spent or held today and this run needs about "
            f"{credits.format_credits(estimate)}. It resets at 00:00 UTC; an owner or admin can "
            "raise it in Settings > API.",
            cap_millicredits=cap,
            spent_millicredits=spent,
            needed_millicredits=estimate,
        )


@dataclass(frozen=True)
class StartedRun:
    generation_id: int
    public_id: str
    model_key: str
    requested_model_key: str
    prompt: str
    created: int
    replayed: bool = False


def run_start(
    *,
    session: Session,
    principal: ApiPrincipal,
    scope: str,
    model_key: str,
    prompt: str,
    params: dict[str, Any],
    request_id: str,
    claim: bool,
    idempotency_key: str | None = None,
) -> StartedRun:
    """Check the key, hold credits and create the run (claimed by this request if `claim`).

    Commits. With `idempotency_key`, a second create with the same key returns the first run.

    Raises:
        DomainError: the API's codes (see `api_error_from`), ``daily_cap_reached``.
    """
    if idempotency_key is not None:
        if (
            not isinstance(idempotency_key, str)
            or not 1 <= len(idempotency_key) <= MAX_IDEMPOTENCY_KEY
        ):
            raise _invalid(
                f"The Idempotency-Key header must be 1 to {MAX_IDEMPOTENCY_KEY} characters.",
                "Idempotency-Key",
            )
        replay = _idempotent_replay(session, principal.key_id, idempotency_key)
        if replay is not None:
            return replay
    try:
        api_keys.api_scope_require(session=session, principal=principal, scope=scope)
        model = _usable_model(session, principal, model_key)
        expected = api_keys.SCOPE_MODALITY[scope]
        if model.modality != expected:
            raise _invalid(
                f"{model.display_name} is a {model.modality} model; this endpoint needs a {expected} model.",
                "model",
            )
        _lock_key(session, principal.key_id)
        _daily_cap_check(session, principal, model, params, prompt)
        generation = generations.generation_start(
            session=session,
            user=principal.user,
            org_id=principal.org_id,
            model_key=model_key,
            prompt=prompt,
            params=params,
            project_id=principal.project_id,
            api_key_id=principal.key_id,
            request_id=request_id,
        )
        if idempotency_key is not None:
            session.add(
                ApiIdempotencyKey(
                    api_key_id=principal.key_id,
                    key=idempotency_key,
                    route=scope,
                    generation_id=generation.id,
                    created_at=utcnow(),
                )
            )
            session.flush()
        started = StartedRun(
            generation_id=generation.id,
            public_id=generation.public_id,
            model_key=generation.model_key,
            requested_model_key=model_key,
            prompt=generation.prompt,
            created=int(as_utc(generation.created_at).timestamp()),
        )
        if claim:
            # Claimed in the same transaction as the hold: the executor's task will skip it.
            generations.generation_mark_running(
                session=session,
                generation_id=generation.id,
                worker_id=run_engine.worker_id(),
                lease_seconds=get_settings().run_lease_seconds,
            )
        else:
            session.commit()
        return started
    except IntegrityError:
        session.rollback()
        replay = _idempotent_replay(session, principal.key_id, idempotency_key or "")
        if replay is None:
            raise
        return replay
    except DomainError as error:
        session.rollback()
        raise api_error_from(error) from None


def _idempotent_replay(session: Session, key_id: int, idempotency_key: str) -> StartedRun | None:
    row = session.exec(
        select(ApiIdempotencyKey).where(
            ApiIdempotencyKey.api_key_id == key_id, ApiIdempotencyKey.key == idempotency_key
        )
    ).first()
    if row is None or row.generation_id is None:
        return None
    generation = session.get(Generation, row.generation_id)
    params = dict(generation.params or {})
    return StartedRun(
        generation_id=generation.id,
        public_id=generation.public_id,
        model_key=generation.model_key,
        requested_model_key=params.get("requested_model_key") or generation.model_key,
        prompt=generation.prompt,
        created=int(as_utc(generation.created_at).timestamp()),
        replayed=True,
    )


# --- running claimed runs ---------------------------------------------------------------------


class _ClientGone(Exception):
    """The streaming client disconnected: stop producing text."""


class StoppableText:
    """Wraps a text provider so a run stops at its next piece once `stop` is set.

    Stopped, it returns what was produced (prompt + text so far, priced by the model's rate),
    so the run settles for that through the normal path.
    """

    def __init__(self, inner: Provider, stop: threading.Event):
        self.inner = inner
        self.stop = stop
        self.name = getattr(inner, "name", "provider")
        self.pool_key = getattr(inner, "pool_key", None) or self.name

    def generate_text(
        self, *, model_id: str, prompt: str, on_delta: TextDelta | None = None, **options: Any
    ) -> ProviderResult:
        produced: list[str] = []

        def relay(piece: str) -> None:
            if self.stop.is_set():
                raise _ClientGone()
            produced.append(piece)
            if on_delta is not None:
                on_delta(piece)

        try:
            return self.inner.generate_text(
                model_id=model_id, prompt=prompt, on_delta=relay, **options
            )
        except Exception:
            if not self.stop.is_set():
                raise
        text = "".join(produced)
        units = _tokens(prompt) + (_tokens(text) if text else 0)
        return ProviderResult(
            modality="text",
            units=units,
            text=text,
            provider_units=None,
            details={"stopped": "client_disconnected"},
        )

    def generate_image(self, **kwargs: Any) -> ProviderResult:
        return self.inner.generate_image(**kwargs)

    def generate_video(self, **kwargs: Any) -> ProviderResult:
        return self.inner.generate_video(**kwargs)


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text or "") / CHARS_PER_TOKEN))


def run_execute(
    generation_id: int,
    *,
    on_delta: TextDelta | None = None,
    stop: threading.Event | None = None,
    provider: Provider | None = None,
) -> Generation:
    """Run a run claimed by `run_start(claim=True)`, renewing its lease; blocks this thread.

    Settles or releases through `generations.generation_execute` (commits).
    """
    with db.new_session() as session:
        generation = session.get(Generation, generation_id)
        if generation is None:
            raise NotFound("This run does not exist.")
        if stop is not None:
            model = registry.model_get(session=session, key=generation.model_key)
            try:
                provider = StoppableText(provider or provider_for(model), stop)
            except ProviderError:
                provider = None  # generation_execute reports it and releases the hold
        session.commit()
        with run_engine.LeaseRenewal(
            Generation, generation_id, run_engine.worker_id(), get_settings().run_lease_seconds
        ):
            return generations.generation_execute(
                session=session, generation_id=generation_id, provider=provider, on_delta=on_delta
            )


# --- answers ----------------------------------------------------------------------------------


def run_failure_error(generation: Generation) -> DomainError:
    """The API error of a failed run: ``timed_out`` or ``provider_error``, naming the run."""
    code = generation.failure_code or Code.provider_error.value
    api_code = Code.timed_out if code in ("timeout", Code.timed_out.value) else Code.provider_error
    return error_with_code(
        api_code,
        (generation.failure_reason or "The model provider failed.")
        + f" Run {generation.public_id}; no credits were charged.",
        generation_id=generation.public_id,
    )


def usage_of(generation: Generation) -> dict[str, Any]:
    prompt_tokens = _tokens(generation.prompt)
    completion_tokens = _tokens(generation.output_text) if generation.output_text else 0
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def credits_text(millicredits: int) -> str:
    return credits.format_credits(millicredits)


def chat_completion_body(generation: Generation, started: StartedRun) -> dict[str, Any]:
    """The non-streamed answer, or the run's failure as an error to raise."""
    if generation.status != GenerationStatus.succeeded.value:
        raise run_failure_error(generation)
    return {
        "id": f"chatcmpl-{generation.public_id}",
        "object": "chat.completion",
        "created": started.created,
        "model": started.requested_model_key,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": generation.output_text or ""},
                "finish_reason": "stop",
            }
        ],
        "usage": usage_of(generation),
        "credits_charged": generation.charged_millicredits / 1000,
        "generation_id": generation.public_id,
    }


def images_body(
    generation: Generation,
    started: StartedRun,
    response_format: str,
    asset_url: Callable[[str], str],
) -> dict[str, Any]:
    import base64

    if generation.status != GenerationStatus.succeeded.value:
        raise run_failure_error(generation)
    data = []
    with db.new_session() as session:
        assets = session.exec(
            select(Asset).where(Asset.generation_id == generation.id).order_by(col(Asset.id))
        ).all()
        for asset in assets:
            if response_format == "url":
                data.append(
                    {"url": asset_url(asset.public_id), "revised_prompt": generation.prompt}
                )
            else:
                raw = storage_for(asset.storage_backend).get(asset.storage_key)
                data.append(
                    {
                        "b64_json": base64.b64encode(raw).decode(),
                        "revised_prompt": generation.prompt,
                    }
                )
    return {
        "created": started.created,
        "data": data,
        "credits_charged": generation.charged_millicredits / 1000,
        "generation_id": generation.public_id,
    }


def _visible_run(session: Session, principal: ApiPrincipal, public_id: Any) -> Generation:
    if not isinstance(public_id, str) or len(public_id) > 40:
        raise NotFound("There is no video with this id for this API key's organization.")
    generation = session.exec(
        select(Generation).where(
            Generation.public_id == public_id, Generation.org_id == principal.org_id
        )
    ).first()
    if generation is None or (
        principal.project_id is not None and generation.project_id != principal.project_id
    ):
        raise NotFound("There is no video with this id for this API key's organization.")
    actor = policy.actor_for(session=session, user=principal.user, org_id=principal.org_id)
    decision = policy.can(
        actor,
        policy.Action.asset_view,
        policy.target_for(
            session=session, org_id=principal.org_id, project_id=generation.project_id
        ),
    )
    if not decision:
        raise NotFound("There is no video with this id for this API key's organization.")
    return generation


_VIDEO_STATUS = {
    "queued": "queued",
    "running": "in_progress",
    "succeeded": "completed",
    "failed": "failed",
}


def video_object(generation: Generation) -> dict[str, Any]:
    params = dict(generation.params or {})
    aspect = params.get("aspect", "16:9")
    status = _VIDEO_STATUS.get(generation.status, generation.status)
    body: dict[str, Any] = {
        "id": generation.public_id,
        "object": "video",
        "model": params.get("requested_model_key") or generation.model_key,
        "status": status,
        "progress": 100
        if status in ("completed", "failed")
        else (50 if status == "in_progress" else 0),
        "created_at": int(as_utc(generation.created_at).timestamp()),
        "completed_at": int(as_utc(generation.finished_at).timestamp())
        if generation.finished_at
        else None,
        "seconds": str(params.get("seconds", 6)),
        "size": "1280x720" if aspect == "16:9" else "720x1280",
        "prompt": generation.prompt,
        "credits_charged": generation.charged_millicredits / 1000,
        "error": None,
    }
    if status == "failed":
        body["error"] = {
            "code": generation.failure_code or "provider_error",
            "message": generation.failure_reason or "",
        }
    return body


def video_get(*, session: Session, principal: ApiPrincipal, public_id: str) -> dict[str, Any]:
    api_keys.api_scope_require(
        session=session, principal=principal, scope=api_keys.SCOPE_VIDEOS_WRITE
    )
    return video_object(_visible_run(session, principal, public_id))


@dataclass(frozen=True)
class Content:
    data: bytes
    content_type: str
    filename: str


def video_content(*, session: Session, principal: ApiPrincipal, public_id: str) -> Content:
    api_keys.api_scope_require(
        session=session, principal=principal, scope=api_keys.SCOPE_VIDEOS_WRITE
    )
    generation = _visible_run(session, principal, public_id)
    if generation.status != GenerationStatus.succeeded.value:
        raise error_with_code(
            Code.conflict,
            f"Video {generation.public_id} is {_VIDEO_STATUS.get(generation.status, generation.status)}; "
            "its content is available once it is completed. Poll GET /v1/videos/{id}.",
        )
    asset = session.exec(
        select(Asset).where(Asset.generation_id == generation.id).order_by(col(Asset.id))
    ).first()
    if asset is None:
        raise NotFound("This video has no file.")
    return Content(
        storage_for(asset.storage_backend).get(asset.storage_key),
        asset.content_type,
        asset.filename,
    )


def asset_content(*, session: Session, principal: ApiPrincipal, asset_public_id: str) -> Content:
    """An image or video file of the key's organization (and project), for `url` answers."""
    if not isinstance(asset_public_id, str) or len(asset_public_id) > 40:
        raise NotFound("There is no file with this id.")
    asset = session.exec(
        select(Asset).where(Asset.public_id == asset_public_id, Asset.org_id == principal.org_id)
    ).first()
    if asset is None or (
        principal.project_id is not None and asset.project_id != principal.project_id
    ):
        raise NotFound("There is no file with this id.")
    if not any(
        s in principal.scopes for s in (api_keys.SCOPE_IMAGES_WRITE, api_keys.SCOPE_VIDEOS_WRITE)
    ):
        raise error_with_code(
            Code.scope_missing, "Files need a key with images:write or videos:write."
        )
    actor = policy.actor_for(session=session, user=principal.user, org_id=principal.org_id)
    if not policy.can(
        actor,
        policy.Action.asset_view,
        policy.target_for(session=session, org_id=principal.org_id, project_id=asset.project_id),
    ):
        raise NotFound("There is no file with this id.")
    return Content(
        storage_for(asset.storage_backend).get(asset.storage_key),
        asset.content_type,
        asset.filename,
    )


# --- usage ------------------------------------------------------------------------------------


def usage_summary(*, session: Session, principal: ApiPrincipal, days: Any = 30) -> dict[str, Any]:
    """`GET /v1/usage`: the organization's usage by day, source and model (``usage:read``)."""
    api_keys.api_scope_require(
        session=session, principal=principal, scope=api_keys.SCOPE_USAGE_READ
    )
    if isinstance(days, str) and days.strip().isdigit():
        days = int(days)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 90:
        raise _invalid("'days' must be a whole number from 1 to 90.", "days")
    since = _day_start() - timedelta(days=days - 1)
    day = func.date(UsageEvent.occurred_at)
    rows = session.exec(
        select(
            day,
            UsageEvent.source,
            UsageEvent.model_key,
            func.count(),
            func.coalesce(func.sum(UsageEvent.units), 0),
            func.coalesce(func.sum(UsageEvent.millicredits), 0),
        )
        .where(UsageEvent.org_id == principal.org_id, col(UsageEvent.occurred_at) >= since)
        .group_by(day, UsageEvent.source, UsageEvent.model_key)
        .order_by(day)
    ).all()
    data = [
        {
            "date": str(row[0]),
            "source": row[1],
            "model": row[2],
            "runs": int(row[3]),
            "units": int(row[4]),
            "credits": int(row[5]) / 1000,
        }
        for row in rows
    ]
    balance = credits.balance_get(session=session, org_id=principal.org_id)
    return {
        "object": "usage",
        "organization": principal.org_slug,
        "since": since.date().isoformat(),
        "data": data,
        "total_credits": sum(item["credits"] for item in data),
        "balance_credits": balance.balance / 1000,
    }


# --- request log ------------------------------------------------------------------------------


@dataclass
class LogRecord:
    """What one request did, filled in as it goes; written once at its end."""

    request_id: str
    method: str
    path: str
    org_id: int | None = None
    api_key_id: int | None = None
    status_code: int = 0
    error_code: str | None = None
    model_key: str | None = None
    generation_id: int | None = None
    millicredits: int = 0
    stream: bool = False
    duration_ms: int = 0


def request_log_write(record: LogRecord) -> None:
    """Write one request's row in a session of its own (commits)."""
    with db.session_scope() as session:
        session.add(
            RequestLog(
                request_id=record.request_id[:64],
                org_id=record.org_id,
                api_key_id=record.api_key_id,
                method=record.method[:8],
                path=record.path[:300],
                status_code=record.status_code,
                error_code=(record.error_code or None) and record.error_code[:64],
                model_key=(record.model_key or None) and record.model_key[:64],
                duration_ms=max(0, int(record.duration_ms)),
                generation_id=record.generation_id,
                millicredits=max(0, int(record.millicredits)),
                stream=record.stream,
                created_at=utcnow(),
            )
        )


@dataclass(frozen=True)
class LogFilters:
    request_id: str = ""
    status: str = ""  # "" | "success" | "error"
    code: str = ""
    model: str = ""
    key_id: int | None = None


@dataclass(frozen=True)
class LogRow:
    id: int
    request_id: str
    created_at: datetime
    method: str
    path: str
    status_code: int
    error_code: str
    model_key: str
    key_name: str
    key_prefix: str
    generation_public_id: str
    millicredits: int
    stream: bool
    duration_ms: int
    ledger_entries: tuple[str, ...] = ()


def _logs_query(org_id: int, filters: LogFilters):
    query = select(RequestLog).where(RequestLog.org_id == org_id)
    if filters.request_id:
        # Exact match over every date (the unique index), as support asks for it.
        return query.where(RequestLog.request_id == filters.request_id.strip())
    query = query.where(col(RequestLog.created_at) >= utcnow() - timedelta(days=LOG_RETENTION_DAYS))
    if filters.status == "success":
        query = query.where(col(RequestLog.status_code) < 400)
    elif filters.status == "error":
        query = query.where(col(RequestLog.status_code) >= 400)
    if filters.code:
        query = query.where(RequestLog.error_code == filters.code)
    if filters.model:
        query = query.where(RequestLog.model_key == filters.model)
    if filters.key_id is not None:
        query = query.where(RequestLog.api_key_id == filters.key_id)
    return query


def _require_logs(session: Session, user: Any, org_id: int) -> None:
    actor = policy.actor_for(session=session, user=user, org_id=org_id)
    policy.require(
        actor, policy.Action.api_keys_manage, policy.target_for(session=session, org_id=org_id)
    )


def request_logs_search(
    *, session: Session, actor_user: Any, org_id: int, filters: LogFilters, limit: int = 100
) -> list[LogRow]:
    """The org's request log, newest first (owner/admin); a request id finds it on any date."""
    _require_logs(session, actor_user, org_id)
    rows = list(
        session.exec(
            _logs_query(org_id, filters)
            .order_by(col(RequestLog.created_at).desc(), col(RequestLog.id).desc())
            .limit(max(1, min(limit, MAX_CSV_ROWS)))
        )
    )
    return _log_rows(session, rows)


def _log_rows(session: Session, rows: list[RequestLog]) -> list[LogRow]:
    key_ids = {r.api_key_id for r in rows if r.api_key_id}
    keys = (
        {k.id: k for k in session.exec(select(ApiKey).where(col(ApiKey.id).in_(key_ids)))}
        if key_ids
        else {}
    )
    gen_ids = {r.generation_id for r in rows if r.generation_id}
    gens = (
        dict(
            session.exec(
                select(Generation.id, Generation.public_id).where(col(Generation.id).in_(gen_ids))
            ).all()
        )
        if gen_ids
        else {}
    )
    ledger: dict[int, list[str]] = {}
    if gen_ids and len(rows) <= MAX_LOG_PAGE:
        for entry in session.exec(
            select(CreditLedgerEntry)
            .where(col(CreditLedgerEntry.generation_id).in_(gen_ids))
            .order_by(col(CreditLedgerEntry.id))
        ):
            ledger.setdefault(entry.generation_id, []).append(
                f"{entry.kind} {credits.format_credits(abs(entry.amount_millicredits))}"
            )
    return [
        LogRow(
            id=r.id,
            request_id=r.request_id,
            created_at=as_utc(r.created_at),
            method=r.method,
            path=r.path,
            status_code=r.status_code,
            error_code=r.error_code or "",
            model_key=r.model_key or "",
            key_name=keys[r.api_key_id].name if r.api_key_id in keys else "",
            key_prefix=keys[r.api_key_id].prefix if r.api_key_id in keys else "",
            generation_public_id=gens.get(r.generation_id, "") if r.generation_id else "",
            millicredits=r.millicredits,
            stream=r.stream,
            duration_ms=r.duration_ms,
            ledger_entries=tuple(ledger.get(r.generation_id, ())) if r.generation_id else (),
        )
        for r in rows
    ]


LOG_CSV_COLUMNS = (
    "created_at_utc",
    "request_id",
    "method",
    "path",
    "status",
    "error_code",
    "model",
    "key",
    "generation_id",
    "credits",
    "stream",
    "duration_ms",
)


def _csv_safe(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def request_logs_csv(*, session: Session, actor_user: Any, org_id: int, filters: LogFilters) -> str:
    """The filtered log as CSV (owner/admin), at most `MAX_CSV_ROWS` rows."""
    rows = request_logs_search(
        session=session, actor_user=actor_user, org_id=org_id, filters=filters, limit=MAX_CSV_ROWS
    )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(LOG_CSV_COLUMNS)
    for row in rows:
        writer.writerow(
            [
                f"{row.created_at:%Y-%m-%d %H:%M:%S}",
                row.request_id,
                row.method,
                _csv_safe(row.path),
                row.status_code,
                row.error_code,
                _csv_safe(row.model_key),
                _csv_safe(f"{row.key_name} ({row.key_prefix})" if row.key_prefix else ""),
                row.generation_public_id,
                credits.format_credits(row.millicredits),
                "yes" if row.stream else "no",
                row.duration_ms,
            ]
        )
    return out.getvalue()


def request_logs_purge(*, batch: int = 5000) -> int:
    """Delete request-log rows older than `LOG_RETENTION_DAYS` (a job; safe twice at once)."""
    cutoff = utcnow() - timedelta(days=LOG_RETENTION_DAYS)
    removed = 0
    while True:
        with db.session_scope() as session:
            ids = session.exec(
                select(RequestLog.id)
                .where(col(RequestLog.created_at) < cutoff)
                .order_by(col(RequestLog.id))
                .limit(batch)
            ).all()
            if not ids:
                return removed
            result = session.execute(delete(RequestLog).where(col(RequestLog.id).in_(ids)))
            removed += result.rowcount or 0
        if len(ids) < batch:
            return removed


def log_codes(*, session: Session, org_id: int) -> list[str]:
    """Error codes seen in the org's log (for the filter), within retention."""
    since = utcnow() - timedelta(days=LOG_RETENTION_DAYS)
    return sorted(
        c
        for c in session.exec(
            select(RequestLog.error_code)
            .where(
                RequestLog.org_id == org_id,
                col(RequestLog.created_at) >= since,
                or_(col(RequestLog.error_code).is_not(None)),
            )
            .distinct()
        ).all()
        if c
    )


# --- one request's run and ledger (the Logs drill-down) ---------------------------------------


@dataclass(frozen=True)
class LedgerLine:
    kind: str  # hold | settle | release | ...
    amount_millicredits: int  # signed: + adds to the balance
    created_at: datetime
    memo: str
    idempotency_key: str


@dataclass(frozen=True)
class LogDetail:
    request_id: str
    generation: generations.GenerationView | None  # None: no run, or one no longer visible
    ledger: tuple[LedgerLine, ...]

    @property
    def net_millicredits(self) -> int:
        """What the run cost the balance in the end (a hold and its release cancel out)."""
        return -sum(line.amount_millicredits for line in self.ledger)


def request_log_detail(
    *, session: Session, actor_user: Any, org_id: int, request_id: str
) -> LogDetail:
    """The run a logged request started and every ledger entry of that run (owner/admin).

    Raises:
        NotFound: no such request in this organization's log (also another org's request id).
    """
    _require_logs(session, actor_user, org_id)
    request_id = (request_id or "").strip()[:64]
    row = session.exec(
        select(RequestLog).where(RequestLog.org_id == org_id, RequestLog.request_id == request_id)
    ).first()
    if row is None:
        raise NotFound(
            f"No request {request_id or '(empty)'} in this organization's log. Search again; "
            f"requests are kept {LOG_RETENTION_DAYS} days."
        )
    if not row.generation_id:
        return LogDetail(request_id=row.request_id, generation=None, ledger=())
    generation = session.get(Generation, row.generation_id)
    view = None
    if generation is not None and generation.org_id == org_id:
        try:
            view = generations.generation_view(
                session=session, user=actor_user, org_id=org_id, public_id=generation.public_id
            )
        except NotFound:
            view = None
    entries = session.exec(
        select(CreditLedgerEntry)
        .where(
            CreditLedgerEntry.org_id == org_id,
            CreditLedgerEntry.generation_id == row.generation_id,
        )
        .order_by(col(CreditLedgerEntry.id))
    )
    ledger = tuple(
        LedgerLine(
            kind=entry.kind,
            amount_millicredits=entry.amount_millicredits,
            created_at=as_utc(entry.created_at),
            memo=entry.memo or "",
            idempotency_key=entry.idempotency_key,
        )
        for entry in entries
    )
    return LogDetail(request_id=row.request_id, generation=view, ledger=ledger)
