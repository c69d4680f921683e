"""Adapter for any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, LiteLLM...) via the
official `openai` SDK: chat completions (optionally streamed), images, videos.

Base URL and key come from settings (OPENAI_BASE_URL / OPENAI_API_KEY); a registry row's
`provider_base_url` overrides the base URL for that model. SDK retries are off: a failed
call fails the run (its credits are released) and the person may retry it.
"""

from __future__ import annotations

import base64
import math
import time
from typing import Any

import httpx
import openai

from core.settings import get_settings
from services.providers.base import (
    DEFAULT_ASPECT,
    DEFAULT_TONE,
    OutputFile,
    ProviderError,
    ProviderErrorCode,
    ProviderResult,
    TextDelta,
)

DEFAULT_TIMEOUT_SECONDS = 60.0
VIDEO_TIMEOUT_SECONDS = 600.0
CHARS_PER_TOKEN = 4
_LENGTH_TOKENS = {"short": 300, "medium": 600, "long": 1200}
_IMAGE_SIZES = {"1:1": "1024x1024", "16:9": "1536x1024", "9:16": "1024x1536"}
_VIDEO_SIZES = {"16:9": "1280x720", "9:16": "720x1280", "1:1": "1024x1024"}


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))


def _translate(exc: Exception) -> ProviderError:
    """An SDK exception as a ProviderError a person can act on."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, openai.APITimeoutError):
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
    if isinstance(exc, openai.APIConnectionError):
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
    name = "openai_compatible"

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str = "",
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ):
        if not base_url:
            raise ProviderError(
                ProviderErrorCode.not_configured,
                "No OpenAI-compatible endpoint is configured (OPENAI_BASE_URL is not set).",
            )
        self.base_url = base_url
        self.timeout_seconds = timeout_seconds
        # Local servers (Ollama, vLLM) accept any key; the SDK insists on one.
        self.client = openai.OpenAI(
            base_url=base_url,
            api_key=api_key or "not-needed",
            timeout=timeout_seconds,
            max_retries=0,
        )

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
            if on_delta is None:
                response = self.client.chat.completions.create(
                    model=model_id, messages=messages, max_tokens=limit
                )
                text = response.choices[0].message.content
                usage = response.usage
            else:
                text, usage = self._stream(model_id, messages, limit, on_delta)
        except Exception as exc:  # noqa: BLE001 - every SDK failure becomes a ProviderError
            raise _translate(exc) from exc
        if not isinstance(text, str):
            raise ProviderError(
                ProviderErrorCode.malformed_response,
                "The model provider's answer had no text. Your credits were returned.",
            )
        reported = getattr(usage, "total_tokens", None) if usage is not None else None
        units = reported if isinstance(reported, int) and reported > 0 else None
        estimated = _tokens(prompt) + _tokens(text)
        return ProviderResult(
            modality="text",
            units=units or estimated,
            text=text,
            files=(OutputFile(text.encode(), "text/plain; charset=utf-8", "txt"),),
            provider_units=units,
            details={"model": model_id, "streamed": on_delta is not None},
        )

    def _stream(self, model_id: str, messages: list, limit: int, on_delta: TextDelta):
        stream = self.client.chat.completions.create(
            model=model_id,
            messages=messages,
            max_tokens=limit,
            stream=True,
            stream_options={"include_usage": True},
        )
        parts: list[str] = []
        usage = None
        with stream:
            for chunk in stream:
                if getattr(chunk, "usage", None) is not None:
                    usage = chunk.usage
                if not chunk.choices:
                    continue
                delta = chunk.choices[0].delta
                piece = getattr(delta, "content", None) if delta is not None else None
                if piece:
                    parts.append(piece)
                    on_delta(piece)
        return "".join(parts), usage

    # --- images -------------------------------------------------------------------------------

    def generate_image(
        self, *, model_id: str, prompt: str, aspect: str = DEFAULT_ASPECT, count: int = 1
    ) -> ProviderResult:
        try:
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
                    fetched = httpx.get(item.url, timeout=self.timeout_seconds)
                    fetched.raise_for_status()
                    data = fetched.content
                else:
                    continue
                files.append(OutputFile(data, "image/png", "png"))
        except httpx.HTTPError as exc:
            raise ProviderError(
                ProviderErrorCode.provider_error,
                "The generated image could not be downloaded. Your credits were returned.",
            ) from exc
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

    # --- video --------------------------------------------------------------------------------

    def generate_video(
        self, *, model_id: str, prompt: str, seconds: int = 6, aspect: str = "16:9"
    ) -> ProviderResult:
        deadline = time.monotonic() + VIDEO_TIMEOUT_SECONDS
        try:
            video = self.client.videos.create(
                model=model_id,
                prompt=prompt,
                seconds=str(seconds),
                size=_VIDEO_SIZES.get(aspect, "1280x720"),
            )
            while video.status in ("queued", "in_progress"):
                if time.monotonic() > deadline:
                    raise ProviderError(ProviderErrorCode.timeout)
                time.sleep(2)
                video = self.client.videos.retrieve(video.id)
            if video.status != "completed":
                raise ProviderError(
                    ProviderErrorCode.provider_error,
                    "The model provider could not make this video. Your credits were returned.",
                )
            content = self.client.videos.download_content(video.id)
            data = content.read()
        except Exception as exc:  # noqa: BLE001
            raise _translate(exc) from exc
        return ProviderResult(
            modality="video",
            units=seconds,
            files=(OutputFile(data, "video/mp4", "mp4"),),
            provider_units=seconds,
            details={"model": model_id},
        )
