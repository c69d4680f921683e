"""Which adapter runs a model, and how one run is dispatched to it.

`provider_for(model)` returns the adapter for a registry row (its `provider` is "local" or
"openai_compatible"); `provider_run` calls the adapter method for the run's modality with
the run's parameters. The interface and errors are in `services.providers.base`.
"""

from __future__ import annotations

from typing import Any

from services.providers.base import (
    DEFAULT_ASPECT,
    DEFAULT_TONE,
    Provider,
    ProviderError,
    ProviderErrorCode,
    ProviderResult,
    TextDelta,
)
from services.providers.local import LocalProvider
from services.providers.openai_compatible import OpenAICompatibleProvider


def provider_run(
    provider: Provider,
    *,
    modality: str,
    model_id: str,
    prompt: str,
    params: dict[str, Any],
    on_delta: TextDelta | None = None,
) -> ProviderResult:
    """Dispatch one run to the adapter method for its modality."""
    if modality == "text":
        return provider.generate_text(
            model_id=model_id,
            prompt=prompt,
            tone=params.get("tone") or DEFAULT_TONE,
            length=params.get("length") or "medium",
            max_tokens=params.get("max_tokens"),
            on_delta=on_delta,
        )
    if modality == "image":
        return provider.generate_image(
            model_id=model_id,
            prompt=prompt,
            aspect=params.get("aspect") or DEFAULT_ASPECT,
            count=int(params.get("count") or 1),
        )
    if modality == "video":
        return provider.generate_video(
            model_id=model_id,
            prompt=prompt,
            seconds=int(params.get("seconds") or 6),
            aspect=params.get("aspect") or "16:9",
        )
    raise ProviderError(ProviderErrorCode.provider_error, f"Unknown modality {modality!r}.")


def provider_for(model: Any) -> Provider:
    """The adapter for a registry row (`provider` is "local" or "openai_compatible")."""
    if model.provider == "local":
        return LocalProvider()
    if model.provider == "openai_compatible":
        return OpenAICompatibleProvider.for_model(model)
    raise ProviderError(
        ProviderErrorCode.not_configured, f"Unknown provider {model.provider!r} for this model."
    )
