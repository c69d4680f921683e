"""Providers: the local one offline, and the OpenAI-compatible adapter against a real loopback
HTTP server that speaks the OpenAI API (plain and streamed chat, images, 429, 500, timeouts)."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from core.settings import reset_settings_cache
from services.providers.base import ProviderError, ProviderErrorCode
from services.providers.factory import provider_for
from services.providers.local import LocalProvider
from services.providers.openai_compatible import OpenAICompatibleProvider

PNG_1PX = base64.b64encode(
    (lambda buf: (Image.new("RGB", (1, 1), (255, 0, 0)).save(buf, "PNG"), buf.getvalue())[1])(
        io.BytesIO()
    )
).decode()


class FakeOpenAI(BaseHTTPRequestHandler):
    """Behaviour by model name: ok | rate-limited | broken | slow | garbage | no-choices."""

    requests: list[dict] = []

    def log_message(self, *args):  # keep test output quiet
        pass

    def _json(self, status: int, body) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):  # noqa: N802 - http.server API
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        FakeOpenAI.requests.append(
            {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
        )
        model = body.get("model", "")
        if model == "rate-limited":
            return self._json(429, {"error": {"message": "slow down", "type": "rate_limit"}})
        if model == "broken":
            return self._json(500, {"error": {"message": "internal", "type": "server_error"}})
        if model == "slow":
            time.sleep(2.0)
            try:
                return self._json(200, {})
            except BrokenPipeError:  # the client gave up, as it should
                return None
        if model == "garbage":
            return self._json(200, b"this is not json")
        if self.path.endswith("/chat/completions"):
            if model == "no-choices":
                return self._json(200, {"id": "x", "object": "chat.completion", "choices": []})
            if body.get("stream"):
                return self._stream(model)
            return self._json(
                200,
                {
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "created": 0,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "Fresh copy for spring."},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27},
                },
            )
        if self.path.endswith("/images/generations"):
            return self._json(
                200, {"created": 0, "data": [{"b64_json": PNG_1PX}] * int(body.get("n", 1))}
            )
        return self._json(404, {"error": {"message": "unknown route"}})

    def _stream(self, model: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for piece in ("Spring ", "is ", "here."):
            chunk = {
                "id": "c1",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model,
                "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
            }
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        usage = {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [],
            "usage": {
                "prompt_tokens": 10,
                "completion_tokens": 3,
                "total_tokens": True if model == "usage-true" else 13,
            },
        }
        self.wfile.write(f"data: {json.dumps(usage)}\n\ndata: [DONE]\n\n".encode())
        self.wfile.flush()


@pytest.fixture(scope="module")
def server_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


@pytest.fixture
def provider(server_url):
    FakeOpenAI.requests.clear()
    return OpenAICompatibleProvider(base_url=server_url, api_key="sk-test", timeout_seconds=0.5)


def test_chat_completion_returns_text_and_reported_tokens(provider):
    result = provider.generate_text(model_id="ok", prompt="Spring launch", tone="bold")
    assert result.text == "Fresh copy for spring."
    assert result.units == 27 and result.provider_units == 27
    request = FakeOpenAI.requests[-1]
    assert request["path"] == "/v1/chat/completions"
    assert request["auth"] == "Bearer sk-test"
    assert "bold" in request["body"]["messages"][0]["content"]
    assert request["body"]["messages"][1] == {"role": "user", "content": "Spring launch"}


def test_streamed_chat_calls_back_per_piece_and_reads_usage(provider):
    pieces: list[str] = []
    result = provider.generate_text(model_id="ok", prompt="Spring", on_delta=pieces.append)
    assert pieces == ["Spring ", "is ", "here."]
    assert result.text == "Spring is here."
    assert result.units == 13
    assert FakeOpenAI.requests[-1]["body"]["stream"] is True


def test_a_streamed_usage_figure_of_true_counts_as_not_reported(provider):
    result = provider.generate_text(model_id="usage-true", prompt="Spring", on_delta=lambda _: None)
    assert result.text == "Spring is here."
    assert result.provider_units is None  # not 1 token
    assert result.units == 2 + 4  # estimated: "Spring" (2 tokens) + "Spring is here." (4)


def test_a_direct_call_ends_at_its_own_deadline(server_url):
    adapter = OpenAICompatibleProvider(
        base_url=server_url, timeout_seconds=30, deadline_seconds=0.5
    )
    with pytest.raises(ProviderError) as caught:
        adapter.generate_text(model_id="slow", prompt="x")  # answers after 2 s
    assert caught.value.code == ProviderErrorCode.timeout
    assert "credits were returned" in caught.value.message


def test_images_generate_decodes_base64(provider):
    result = provider.generate_image(model_id="ok", prompt="A shoe", count=2, aspect="16:9")
    assert result.units == 2
    assert all(f.data.startswith(b"\x89PNG") for f in result.files)
    assert FakeOpenAI.requests[-1]["body"]["size"] == "1536x1024"


@pytest.mark.parametrize(
    "model_id, code, status",
    [
        ("rate-limited", ProviderErrorCode.rate_limited, 429),
        ("broken", ProviderErrorCode.provider_error, 500),
        ("slow", ProviderErrorCode.timeout, None),
        ("garbage", ProviderErrorCode.malformed_response, None),
        ("no-choices", ProviderErrorCode.malformed_response, None),
    ],
)
def test_failures_become_typed_provider_errors(provider, model_id, code, status):
    with pytest.raises(ProviderError) as caught:
        provider.generate_text(model_id=model_id, prompt="x")
    assert caught.value.code == code
    assert caught.value.status_code == status
    assert "credits were returned" in caught.value.message


def test_streaming_errors_are_typed_too(provider):
    with pytest.raises(ProviderError) as caught:
        provider.generate_text(model_id="rate-limited", prompt="x", on_delta=lambda _: None)
    assert caught.value.code == ProviderErrorCode.rate_limited


def test_image_errors_are_typed(provider):
    with pytest.raises(ProviderError) as caught:
        provider.generate_image(model_id="broken", prompt="x")
    assert caught.value.code == ProviderErrorCode.provider_error


def test_base_url_from_settings_with_per_model_override(server_url, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-settings")
    reset_settings_cache()

    class Row:
        provider = "openai_compatible"
        provider_base_url = None

    adapter = provider_for(Row())
    assert str(adapter.client.base_url).startswith("http://127.0.0.1:9/v1")
    Row.provider_base_url = server_url
    adapter = provider_for(Row())
    FakeOpenAI.requests.clear()
    assert adapter.generate_text(model_id="ok", prompt="hi").text == "Fresh copy for spring."
    assert FakeOpenAI.requests[-1]["auth"] == "Bearer sk-from-settings"


def test_unconfigured_endpoint_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    reset_settings_cache()

    class Row:
        provider = "openai_compatible"
        provider_base_url = None

    with pytest.raises(ProviderError) as caught:
        provider_for(Row())
    assert caught.value.code == ProviderErrorCode.not_configured


def test_local_provider_text_respects_tone_and_length():
    local = LocalProvider()
    short = local.generate_text(
        model_id="studio-local-text-1", prompt="Trail shoes", length="short"
    )
    long = local.generate_text(
        model_id="studio-local-text-1", prompt="Trail shoes", length="long", tone="professional"
    )
    assert "Trail shoes" in short.text and len(long.text) > len(short.text)
    assert "Contact our team" in long.text
    pieces: list[str] = []
    streamed = local.generate_text(model_id="m", prompt="Trail shoes", on_delta=pieces.append)
    assert "".join(pieces) == streamed.text


def test_local_provider_renders_images_and_an_animation():
    local = LocalProvider()
    image = local.generate_image(model_id="studio-local-image-1", prompt="Trail", aspect="9:16")
    picture = Image.open(io.BytesIO(image.files[0].data))
    assert picture.format == "PNG" and picture.height > picture.width
    video = local.generate_video(model_id="studio-local-motion-1", prompt="Trail", seconds=3)
    animation = Image.open(io.BytesIO(video.files[0].data))
    assert animation.format == "GIF" and animation.n_frames > 1
    assert video.units == 3
