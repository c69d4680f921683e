"""Adapter for any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, LiteLLM...) via the
official `openai` SDK: chat completions (optionally streamed), images, videos.

Base URL and key come from settings (OPENAI_BASE_URL / OPENAI_API_KEY); a registry row's
`provider_base_url` overrides the base URL for that model. SDK retries are off: a failed
call fails the run (its credits are released) and the person may retry it.

Every call ends by its total deadline (`services.providers.limits`): the per-read timeout
(`timeout_seconds`) alone would let a provider that trickles a byte now and then hold a run
for as long as it likes. Usage figures are taken only when they are a positive integer
(`reported_tokens`): a boolean, a fraction, text or a negative number counts as "not
reported", and the run is priced on its estimated tokens instead.
"""

from __future__ import annotations

import base64
import json
import math
import time
from functools import lru_cache
from typing import Any

import httpx2
import openai

from core.settings import get_settings
from services.providers.base import (
    DEFAULT_ASPECT,
    DEFAULT_TONE,
    ChatMessage,
    OutputFile,
    ProviderError,
    ProviderErrorCode,
    ProviderResult,
    TextDelta,
)
from services.providers.limits import (
    deadline_for,
    deadline_http_client,
    deadline_passed,
    deadline_scope,
    seconds_left,
    timeout_error,
)

DEFAULT_TIMEOUT_SECONDS = 60.0  # per connect/read/write; the call's deadline bounds the total
VIDEO_POLL_SECONDS = 2.0
CHARS_PER_TOKEN = 4
_LENGTH_TOKENS = {"short": 300, "medium": 600, "long": 1200}
_IMAGE_SIZES = {"1:1": "1024x1024", "16:9": "1536x1024", "9:16": "1024x1536"}
_VIDEO_SIZES = {"16:9": "1280x720", "9:16": "720x1280", "1:1": "1024x1024"}


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))


def reported_tokens(usage: Any) -> int | None:
    """The provider's `total_tokens` if it is a positive integer, else None (not reported).

    `True` is not 1 token and "12" or 3.7 are not token counts: figures a provider gets wrong
    are ignored rather than trusted. Large figures are kept here; the run's charge is capped
    at its hold by `services.generations`.
    """
    value = getattr(usage, "total_tokens", None) if usage is not None else None
    if isinstance(usage, dict):
        value = usage.get("total_tokens")
    return value if type(value) is int and value > 0 else None


@lru_cache(maxsize=1)
def _http_client() -> httpx2.Client:
    """One deadline-aware HTTP client per process, shared by every endpoint (thread-safe)."""
    return deadline_http_client(timeout=DEFAULT_TIMEOUT_SECONDS)


def _translate(exc: Exception) -> ProviderError:
    """An SDK exception as a ProviderError a person can act on."""
    if isinstance(exc, ProviderError):
        return exc
    if deadline_passed():
        return timeout_error()
    if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException):
        return ProviderError(
            ProviderErrorCode.timeout,
            "The model provider did not answer in time. Your credits were returned; try again.",
        )
    if isinstance(exc, openai.RateLimitError):
        return ProviderError(
            ProviderErrorCode.rate_limited,
            "The model provider is rate limiting requests right now. Your credits were "
            "returned; wait a minute and retry.",
            status_code=429,
        )
    if isinstance(exc, openai.APIStatusError):
        return ProviderError(
            ProviderErrorCode.provider_error,
            f"The model provider returned an error (HTTP {exc.status_code}). Your credits were "
            "returned; retry, or pick another model.",
            status_code=exc.status_code,
        )
    if isinstance(exc, openai.APIConnectionError | httpx2.TransportError):
        return ProviderError(
            ProviderErrorCode.provider_error,
            "The model provider could not be reached. Your credits were returned; retry later.",
        )
    if isinstance(
        exc,
        (
            openai.APIResponseValidationError,
            ValueError,
            KeyError,
            TypeError,
            IndexError,
            AttributeError,
        ),
    ):
        return ProviderError(
            ProviderErrorCode.malformed_response,
            "The model provider sent an answer we could not read. Your credits were returned.",
        )
    return ProviderError(ProviderErrorCode.provider_error, f"The model provider failed: {exc}")


def _system_prompt(tone: str, length: str) -> str:
    return (
        "You are a marketing copywriter. Write in a "
        f"{tone or DEFAULT_TONE} tone, {length or 'medium'} length. Answer with the copy only."
    )


class OpenAICompatibleProvider:
    """Calls one endpoint; each call ends by its deadline (`deadline_seconds`, else settings)."""

    name = "openai_compatible"

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str = "",
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        deadline_seconds: float | None = None,
    ):
        if not base_url:
            raise ProviderError(
                ProviderErrorCode.not_configured,
                "No OpenAI-compatible endpoint is configured (OPENAI_BASE_URL is not set).",
            )
        self.base_url = base_url
        self.timeout_seconds = timeout_seconds
        self.deadline_seconds = deadline_seconds
        # Calls to one endpoint share a pool: a hung endpoint never starves another.
        self.pool_key = f"{self.name} {base_url.rstrip('/')}"
        # Local servers (Ollama, vLLM) accept any key; the SDK insists on one.
        self.client = openai.OpenAI(
            base_url=base_url,
            api_key=api_key or "not-needed",
            timeout=timeout_seconds,
            max_retries=0,
            http_client=_http_client(),
        )

    def _deadline(self, modality: str):
        """This call's deadline; an earlier one (set by the provider pool) still applies."""
        return deadline_scope(seconds=self.deadline_seconds or deadline_for(modality))

    @classmethod
    def for_model(cls, model: Any, *, timeout_seconds: float | None = None):
        settings = get_settings()
        return cls(
            base_url=getattr(model, "provider_base_url", None) or settings.openai_base_url,
            api_key=settings.openai_api_key,
            timeout_seconds=timeout_seconds or DEFAULT_TIMEOUT_SECONDS,
        )

    # --- text ---------------------------------------------------------------------------------

    def generate_text(
        self,
        *,
        model_id: str,
        prompt: str,
        tone: str = DEFAULT_TONE,
        length: str = "medium",
        max_tokens: int | None = None,
        on_delta: TextDelta | None = None,
    ) -> ProviderResult:
        messages = [
            {"role": "system", "content": _system_prompt(tone, length)},
            {"role": "user", "content": prompt},
        ]
        limit = max_tokens or _LENGTH_TOKENS.get(length, 600)
        try:
            with self._deadline("text"):
                text, usage = self._chat(model_id, messages, limit, on_delta)
        except Exception as exc:  # noqa: BLE001 - every SDK failure becomes a ProviderError
            raise _translate(exc) from exc
        if not isinstance(text, str):
            raise ProviderError(
                ProviderErrorCode.malformed_response,
                "The model provider's answer had no text. Your credits were returned.",
            )
        units = reported_tokens(usage)
        estimated = _tokens(prompt) + _tokens(text)
        return ProviderResult(
            modality="text",
            units=units or estimated,
            text=text,
            files=(OutputFile(text.encode(), "text/plain; charset=utf-8", "txt"),),
            provider_units=units,
            details={"model": model_id, "streamed": on_delta is not None},
        )

    def chat(
        self,
        *,
        model_id: str,
        messages: list[ChatMessage],
        max_tokens: int | None = None,
        on_delta: TextDelta | None = None,
    ) -> ProviderResult:
        """A multi-turn chat completion; with `on_delta`, streamed with usage (SSE)."""
        limit = max_tokens or _LENGTH_TOKENS["long"]
        turns = [{"role": m["role"], "content": m["content"]} for m in messages]
        try:
            with self._deadline("text"):
                text, usage = self._chat(model_id, turns, limit, on_delta)
        except Exception as exc:  # noqa: BLE001 - every SDK failure becomes a ProviderError
            raise _translate(exc) from exc
        if not isinstance(text, str):
            raise ProviderError(
                ProviderErrorCode.malformed_response, "The model provider's answer had no text."
            )
        units = reported_tokens(usage)
        estimated = sum(_tokens(m["content"]) for m in turns) + _tokens(text)
        return ProviderResult(
            modality="text",
            units=units or estimated,
            text=text,
            files=(OutputFile(text.encode(), "text/plain; charset=utf-8", "txt"),),
            provider_units=units,
            details={"model": model_id, "streamed": on_delta is not None},
        )

    def _chat(self, model_id: str, messages: list, limit: int, on_delta: TextDelta | None):
        """(text, usage as the provider sent it). Usage is read from the raw JSON: the SDK's
        lenient parsing would turn `true` into 1 and "12" into 12 before we could judge it."""
        if on_delta is not None:
            return self._stream(model_id, messages, limit, on_delta)
        raw = self.client.chat.completions.with_raw_response.create(
            model=model_id, messages=messages, max_tokens=limit
        )
        response = raw.parse()
        body = raw.http_response.json()
        usage = body.get("usage") if isinstance(body, dict) else None
        return response.choices[0].message.content, usage

    def _stream(self, model_id: str, messages: list, limit: int, on_delta: TextDelta):
        """Server-sent chunks read as JSON, calling `on_delta` with each piece of text."""
        parts: list[str] = []
        usage = None
        with self.client.chat.completions.with_streaming_response.create(
            model=model_id,
            messages=messages,
            max_tokens=limit,
            stream=True,
            stream_options={"include_usage": True},
        ) as response:
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[len("data:") :].strip()
                if data == "[DONE]":
                    break
                chunk = json.loads(data)
                if not isinstance(chunk, dict):
                    raise ValueError("a streamed chunk is not a JSON object")
                if chunk.get("error"):
                    raise ProviderError(
                        ProviderErrorCode.provider_error,
                        "The model provider reported an error while answering. Your credits "
                        "were returned; retry, or pick another model.",
                    )
                if chunk.get("usage") is not None:
                    usage = chunk["usage"]
                choices = chunk.get("choices") or []
                delta = (choices[0] or {}).get("delta") if choices else None
                piece = delta.get("content") if isinstance(delta, dict) else None
                if isinstance(piece, str) and piece:
                    parts.append(piece)
                    on_delta(piece)
        return "".join(parts), usage

    # --- images -------------------------------------------------------------------------------

    def generate_image(
        self, *, model_id: str, prompt: str, aspect: str = DEFAULT_ASPECT, count: int = 1
    ) -> ProviderResult:
        try:
            with self._deadline("image"):
                files = self._images(model_id, prompt, aspect, count)
        except Exception as exc:  # noqa: BLE001
            raise _translate(exc) from exc
        if not files:
            raise ProviderError(
                ProviderErrorCode.malformed_response,
                "The model provider returned no image. Your credits were returned.",
            )
        return ProviderResult(
            modality="image",
            units=len(files),
            files=tuple(files),
            provider_units=len(files),
            details={"model": model_id},
        )

    def _images(self, model_id: str, prompt: str, aspect: str, count: int) -> list[OutputFile]:
        response = self.client.images.generate(
            model=model_id,
            prompt=prompt,
            n=count,
            size=_IMAGE_SIZES.get(aspect, "1024x1024"),
            response_format="b64_json",
        )
        files = []
        for item in response.data or []:
            if item.b64_json:
                data = base64.b64decode(item.b64_json, validate=True)
            elif item.url:
                data = self._download(item.url)
            else:
                continue
            files.append(OutputFile(data, "image/png", "png"))
        return files

    def _download(self, url: str) -> bytes:
        try:
            fetched = _http_client().get(url, timeout=self.timeout_seconds)
            fetched.raise_for_status()
        except httpx2.HTTPError as exc:
            if deadline_passed() or isinstance(exc, httpx2.TimeoutException):
                raise timeout_error() from exc
            raise ProviderError(
                ProviderErrorCode.provider_error,
                "The generated image could not be downloaded. Your credits were returned.",
            ) from exc
        return fetched.content

    # --- video --------------------------------------------------------------------------------

    def generate_video(
        self, *, model_id: str, prompt: str, seconds: int = 6, aspect: str = "16:9"
    ) -> ProviderResult:
        try:
            with self._deadline("video"):
                data = self._video(model_id, prompt, seconds, aspect)
        except Exception as exc:  # noqa: BLE001
            raise _translate(exc) from exc
        return ProviderResult(
            modality="video",
            units=seconds,
            files=(OutputFile(data, "video/mp4", "mp4"),),
            provider_units=seconds,
            details={"model": model_id},
        )

    def _video(self, model_id: str, prompt: str, seconds: int, aspect: str) -> bytes:
        video = self.client.videos.create(
            model=model_id,
            prompt=prompt,
            seconds=str(seconds),
            size=_VIDEO_SIZES.get(aspect, "1280x720"),
        )
        while video.status in ("queued", "in_progress"):
            left = seconds_left()
            if left is not None and left <= 0:
                raise timeout_error()
            time.sleep(VIDEO_POLL_SECONDS if left is None else min(VIDEO_POLL_SECONDS, left))
            video = self.client.videos.retrieve(video.id)
        if video.status != "completed":
            raise ProviderError(
                ProviderErrorCode.provider_error,
                "The model provider could not make this video. Your credits were returned.",
            )
        return self.client.videos.download_content(video.id).read()
