"""The AI provider interface: text (optionally streamed), image and video generation.

An adapter returns a `ProviderResult` carrying the units to meter (tokens, assets or seconds,
matching the model's rate unit) or raises a `ProviderError` whose `code` says what went
wrong in a way a person can act on: ``timeout``, ``rate_limited``, ``provider_error``,
``malformed_response`` (and ``not_configured`` when an endpoint is missing).

This module holds only the interface and its errors; `services.providers.factory` picks the
adapter for a registry row (`provider_for`) and dispatches a run to it (`provider_run`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

TEXT_TONES = ("friendly", "professional", "bold", "playful")
DEFAULT_TONE = "friendly"
IMAGE_ASPECTS = ("1:1", "16:9", "9:16")
DEFAULT_ASPECT = "1:1"


class ProviderErrorCode(StrEnum):
    timeout = "timeout"
    rate_limited = "rate_limited"
    provider_error = "provider_error"
    malformed_response = "malformed_response"
    not_configured = "not_configured"


_DEFAULT_MESSAGES = {
    ProviderErrorCode.timeout: "The model provider did not answer in time.",
    ProviderErrorCode.rate_limited: "The model provider is busy (rate limited).",
    ProviderErrorCode.provider_error: "The model provider returned an error.",
    ProviderErrorCode.malformed_response: "The model provider sent an answer we could not read.",
    ProviderErrorCode.not_configured: "This model's provider is not configured on this server.",
}


class ProviderError(Exception):
    """A provider call failed. `message` is for people; credits are released by the caller."""

    def __init__(
        self, code: ProviderErrorCode | str, message: str = "", *, status_code: int | None = None
    ):
        self.code = ProviderErrorCode(code)
        self.message = message or _DEFAULT_MESSAGES[self.code]
        self.status_code = status_code
        super().__init__(self.message)

    @property
    def retryable(self) -> bool:
        return self.code in (ProviderErrorCode.timeout, ProviderErrorCode.rate_limited)


@dataclass(frozen=True)
class OutputFile:
    data: bytes
    content_type: str
    extension: str  # "png", "gif", "txt"


@dataclass(frozen=True)
class ProviderResult:
    """What a run produced, and the units to charge for (per the model's rate unit)."""

    modality: str
    units: int
    text: str | None = None
    files: tuple[OutputFile, ...] = ()
    provider_units: int | None = None  # as reported by the provider, when it reports any
    details: dict[str, Any] = field(default_factory=dict)


TextDelta = Callable[[str], None]
# One turn of a conversation: {"role": "system" | "user" | "assistant", "content": "..."}.
ChatMessage = dict[str, str]
CHAT_ROLES = ("system", "user", "assistant")
# The last turn of a "Continue" request: the conversation, then the partial reply as the
# assistant's turn, then this user turn. A provider continues the partial text (the local
# provider recognises it and writes the rest of the same draft).
CONTINUE_INSTRUCTION = (
    "Your previous reply was cut off. Continue it exactly where it stopped: do not repeat any "
    "of it, do not start over, and begin with the very next characters."
)


class Provider(Protocol):
    name: str

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
        """Text for the prompt; with `on_delta`, stream and call it with each piece."""
        ...

    def chat(
        self,
        *,
        model_id: str,
        messages: list[ChatMessage],
        max_tokens: int | None = None,
        on_delta: TextDelta | None = None,
    ) -> ProviderResult:
        """The next assistant turn of a multi-turn conversation (system turns first).

        With `on_delta`, stream and call it with each piece; `units` are the tokens used.
        """
        ...

    def generate_image(
        self, *, model_id: str, prompt: str, aspect: str = DEFAULT_ASPECT, count: int = 1
    ) -> ProviderResult: ...

    def generate_video(
        self, *, model_id: str, prompt: str, seconds: int = 6, aspect: str = "16:9"
    ) -> ProviderResult: ...
