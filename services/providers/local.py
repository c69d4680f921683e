"""The built-in local provider: works offline, so a fresh install can generate right away.

Text comes from templates over the prompt (tone and length); images are gradient cards with
the prompt set in type, rendered with Pillow; "video" is a short animated GIF of a few
frames. Its models are Studio Local models, never named after a vendor's model.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import textwrap
import time
from collections.abc import Iterable
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from core.settings import get_settings
from services.providers.base import (
    CONTINUE_INSTRUCTION,
    DEFAULT_ASPECT,
    DEFAULT_TONE,
    TEXT_TONES,
    ChatMessage,
    OutputFile,
    ProviderError,
    ProviderErrorCode,
    ProviderResult,
    TextDelta,
)

CHARS_PER_TOKEN = 4
_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
)
_SMALL_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
)

# Calm two-colour gradients (top-left -> bottom-right), picked by a hash of the prompt.
_PALETTES = (
    ((99, 91, 255), (236, 72, 153)),
    ((14, 165, 233), (99, 102, 241)),
    ((16, 185, 129), (59, 130, 246)),
    ((245, 158, 11), (239, 68, 68)),
    ((124, 58, 237), (14, 165, 233)),
    ((30, 41, 59), (71, 85, 105)),
)

_OPENERS = {
    "friendly": "Here's something your audience will love:",
    "professional": "Key message:",
    "bold": "Stop scrolling.",
    "playful": "Guess what?",
}
_CLOSERS = {
    "friendly": "Come say hi - we'd love to show you around.",
    "professional": "Contact our team to learn more.",
    "bold": "Don't wait. Make the move today.",
    "playful": "Go on, treat yourself!",
}
_BENEFITS = (
    "It saves your team hours every week.",
    "It looks great on every screen.",
    "It is built for people who care about the details.",
    "It fits into the tools you already use.",
    "It grows with you, from the first launch to the hundredth.",
)
_PARAGRAPHS_BY_LENGTH = {"short": 1, "medium": 3, "long": 6}


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))


def _subject(prompt: str) -> str:
    cleaned = re.sub(r"\s+", " ", prompt).strip().rstrip(".!?")
    return cleaned[:160] or "your next launch"


def _seed(prompt: str) -> int:
    return int(hashlib.sha256(prompt.encode()).hexdigest()[:8], 16)


def compose_text(prompt: str, *, tone: str = DEFAULT_TONE, length: str = "medium") -> str:
    """Deterministic marketing copy for a prompt in the given tone and length."""
    tone = tone if tone in TEXT_TONES else DEFAULT_TONE
    paragraphs = _PARAGRAPHS_BY_LENGTH.get(length, 3)
    subject = _subject(prompt)
    seed = _seed(prompt + tone)
    headline = subject[:1].upper() + subject[1:]
    lines = [f"{headline}", "", f"{_OPENERS[tone]} {headline}."]
    for index in range(paragraphs):
        benefit = _BENEFITS[(seed + index) % len(_BENEFITS)]
        if index == 0:
            lines.append(f"Why it matters: {benefit}")
        else:
            lines.append(f"- {benefit}")
    lines += ["", _CLOSERS[tone]]
    return "\n".join(lines)


_KIT_NAME = re.compile(r"brand kit '([^'\n]{1,120})'")
_KIT_VOICE = re.compile(r"^Voice: (.{1,300})\.$", re.MULTILINE)


def compose_reply(messages: list[ChatMessage]) -> str:
    """A deterministic Markdown reply to the conversation's last user turn.

    It answers in the brand kit's voice when a system turn carries one, and says which turn of
    the conversation it answers, so multi-turn context is visible offline too.
    """
    system = "\n".join(m.get("content", "") for m in messages if m.get("role") == "system")
    user_turns = [m.get("content", "") for m in messages if m.get("role") == "user"]
    question = re.sub(r"\s+", " ", user_turns[-1] if user_turns else "").strip()
    subject = _subject(question)
    seed = _seed(question)
    kit = _KIT_NAME.search(system)
    voice = _KIT_VOICE.search(system)
    lines = [f"Here is a draft for: {subject}", ""]
    if kit:
        tone = f"the {voice.group(1)} voice" if voice else "the voice"
        lines += [f"Written in {tone} of the {kit.group(1)} brand kit.", ""]
    if len(user_turns) > 1:
        lines += [f"Building on the {len(user_turns) - 1} earlier message(s) in this chat.", ""]
    lines += [f"**Headline:** {subject[:1].upper() + subject[1:]}", ""]
    lines += [f"- {_BENEFITS[(seed + index) % len(_BENEFITS)]}" for index in range(3)]
    lines += ["", "Want a shorter version, or one for a specific channel?"]
    return "\n".join(lines)


def compose_continuation(messages: list[ChatMessage]) -> str | None:
    """The rest of a cut-off reply, when the conversation ends with a "Continue" request.

    The draft for the conversation before the partial reply is composed again and the text
    after the partial reply is returned, so partial + continuation is the same draft a reply
    that never stopped would have written. None when the last turn is not a Continue request.
    """
    if (
        len(messages) < 3
        or messages[-1].get("role") != "user"
        or messages[-1].get("content") != CONTINUE_INSTRUCTION
        or messages[-2].get("role") != "assistant"
    ):
        return None
    partial = messages[-2].get("content", "")
    draft = compose_reply(messages[:-2])
    if draft.startswith(partial):
        return draft[len(partial) :]
    # The partial text is not this draft's start (another model wrote it, or it was edited):
    # continue after the longest end of it that the draft contains, else close the draft.
    for size in range(min(len(partial), 200), 7, -1):
        found = draft.find(partial[-size:])
        if found >= 0:
            return draft[found + size :]
    return "\n\n" + draft.rsplit("\n", 1)[-1]


def _chunks(text: str, size: int = 24) -> Iterable[str]:
    for start in range(0, len(text), size):
        yield text[start : start + size]


@lru_cache(maxsize=16)
def _font(size: int, bold: bool = True) -> ImageFont.ImageFont:
    for path in _FONT_CANDIDATES if bold else _SMALL_FONT_CANDIDATES:
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def _canvas_size(aspect: str, hd: bool) -> tuple[int, int]:
    base = 1024 if hd else 640
    if aspect == "16:9":
        return base, round(base * 9 / 16)
    if aspect == "9:16":
        return round(base * 9 / 16), base
    return base, base


def _gradient(size: tuple[int, int], start, end, shift: float = 0.0) -> Image.Image:
    """A diagonal two-colour gradient; `shift` (0..1) slides it for animation frames."""
    width, height = size
    # Build a small gradient and scale it up: fast and smooth.
    small_w, small_h = 64, max(2, round(64 * height / width))
    small = Image.new("RGB", (small_w, small_h))
    pixels = small.load()
    for y in range(small_h):
        for x in range(small_w):
            t = ((x / (small_w - 1)) * 0.6 + (y / (small_h - 1)) * 0.4 + shift) % 2.0
            t = 2.0 - t if t > 1.0 else t
            pixels[x, y] = tuple(round(a + (b - a) * t) for a, b in zip(start, end, strict=True))
    return small.resize(size, Image.Resampling.BICUBIC)


def _card(
    prompt: str, size: tuple[int, int], palette, *, shift: float = 0.0, label: str = ""
) -> Image.Image:
    width, height = size
    image = _gradient(size, palette[0], palette[1], shift)
    draw = ImageDraw.Draw(image, "RGBA")
    margin = round(min(width, height) * 0.08)
    # A soft panel behind the text.
    draw.rounded_rectangle(
        (margin, margin, width - margin, height - margin),
        radius=round(min(width, height) * 0.05),
        fill=(255, 255, 255, 38),
        outline=(255, 255, 255, 90),
        width=2,
    )
    title_size = max(18, round(min(width, height) * 0.075))
    font = _font(title_size)
    chars_per_line = max(10, int((width - 4 * margin) / (title_size * 0.55)))
    lines = textwrap.wrap(_subject(prompt), chars_per_line)[:5]
    line_height = round(title_size * 1.25)
    block = line_height * len(lines)
    y = (height - block) // 2
    for line in lines:
        text_width = draw.textlength(line, font=font)
        draw.text(((width - text_width) / 2, y), line, font=font, fill=(255, 255, 255, 255))
        y += line_height
    small = _font(max(12, round(title_size * 0.38)), bold=False)
    caption = label or "Studio Local"
    draw.text(
        (margin * 1.4, height - margin * 1.4 - small.size),
        caption,
        font=small,
        fill=(255, 255, 255, 200),
    )
    return image


class LocalProvider:
    """Offline generation for the `studio-local-*` models."""

    name = "local"

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
        if not prompt.strip():
            raise ProviderError(ProviderErrorCode.provider_error, "The prompt is empty.")
        text = compose_text(prompt, tone=tone, length=length)
        if max_tokens:
            text = text[: max_tokens * CHARS_PER_TOKEN]
        if on_delta is not None:
            for piece in _chunks(text):
                on_delta(piece)
        units = _tokens(prompt) + _tokens(text)
        return ProviderResult(
            modality="text",
            units=units,
            text=text,
            files=(OutputFile(text.encode(), "text/plain; charset=utf-8", "txt"),),
            provider_units=units,
            details={"model": model_id, "tone": tone, "length": length},
        )

    def chat(
        self,
        *,
        model_id: str,
        messages: list[ChatMessage],
        max_tokens: int | None = None,
        on_delta: TextDelta | None = None,
    ) -> ProviderResult:
        """A reply streamed in 16-character pieces, `local_chat_chunk_seconds` apart."""
        if not any(m.get("role") == "user" and m.get("content", "").strip() for m in messages):
            raise ProviderError(ProviderErrorCode.provider_error, "There is no message to answer.")
        continuation = compose_continuation(messages)
        text = compose_reply(messages) if continuation is None else continuation
        if max_tokens:
            text = text[: max_tokens * CHARS_PER_TOKEN]
        if on_delta is not None:
            pause = get_settings().local_chat_chunk_seconds
            for index, piece in enumerate(_chunks(text, 16)):
                if pause and index:
                    time.sleep(pause)
                on_delta(piece)
        prompt_tokens = sum(_tokens(m.get("content", "")) for m in messages)
        units = prompt_tokens + _tokens(text)
        return ProviderResult(
            modality="text",
            units=units,
            text=text,
            files=(OutputFile(text.encode(), "text/plain; charset=utf-8", "txt"),),
            provider_units=units,
            details={"model": model_id, "turns": len(messages)},
        )

    def generate_image(
        self, *, model_id: str, prompt: str, aspect: str = DEFAULT_ASPECT, count: int = 1
    ) -> ProviderResult:
        hd = "hd" in model_id
        size = _canvas_size(aspect, hd)
        seed = _seed(prompt)
        files = []
        for index in range(count):
            palette = _PALETTES[(seed + index) % len(_PALETTES)]
            image = _card(prompt, size, palette, label="Studio Local Image" + (" HD" if hd else ""))
            buffer = io.BytesIO()
            image.save(buffer, format="PNG", optimize=True)
            files.append(OutputFile(buffer.getvalue(), "image/png", "png"))
        return ProviderResult(
            modality="image",
            units=count,
            files=tuple(files),
            provider_units=count,
            details={"model": model_id, "width": size[0], "height": size[1]},
        )

    def generate_video(
        self, *, model_id: str, prompt: str, seconds: int = 6, aspect: str = "16:9"
    ) -> ProviderResult:
        width, height = _canvas_size(aspect, hd=False)
        size = (round(width * 0.75), round(height * 0.75))
        palette = _PALETTES[_seed(prompt) % len(_PALETTES)]
        frame_count = 8
        frames = [
            _card(prompt, size, palette, shift=index / frame_count * 2, label="Studio Local Motion")
            for index in range(frame_count)
        ]
        duration_ms = max(100, round(seconds * 1000 / frame_count))
        buffer = io.BytesIO()
        frames[0].save(
            buffer,
            format="GIF",
            save_all=True,
            append_images=frames[1:],
            duration=duration_ms,
            loop=0,
            optimize=True,
        )
        return ProviderResult(
            modality="video",
            units=seconds,
            files=(OutputFile(buffer.getvalue(), "image/gif", "gif"),),
            provider_units=seconds,
            details={"model": model_id, "frames": frame_count},
        )
