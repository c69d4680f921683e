"""Multi-turn chat through the OpenAI-compatible adapter, against a real loopback HTTP server
speaking the OpenAI SSE format: every turn is sent, pieces arrive as they stream, usage is read."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer

import pytest

from services.providers.base import ProviderError
from services.providers.openai_compatible import OpenAICompatibleProvider
from tests.unit.test_providers import FakeOpenAI


@pytest.fixture(scope="module")
def provider():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield OpenAICompatibleProvider(
        base_url=f"http://127.0.0.1:{server.server_address[1]}/v1", api_key="sk-test"
    )
    server.shutdown()
    server.server_close()


TURNS = [
    {"role": "system", "content": "Write for the brand kit 'Acme voice'."},
    {"role": "user", "content": "Ideas for spring?"},
    {"role": "assistant", "content": "Try a garden party."},
    {"role": "user", "content": "Shorter please"},
]


def test_streamed_chat_sends_every_turn_and_reads_usage(provider):
    FakeOpenAI.requests.clear()
    pieces = []
    result = provider.chat(model_id="gpt-x", messages=TURNS, on_delta=pieces.append)
    assert pieces == ["Spring ", "is ", "here."]
    assert result.text == "Spring is here."
    assert (result.units, result.provider_units) == (13, 13)
    body = FakeOpenAI.requests[-1]["body"]
    assert body["messages"] == TURNS
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_unstreamed_chat_and_typed_errors(provider):
    result = provider.chat(model_id="gpt-x", messages=TURNS)
    assert result.text == "Fresh copy for spring." and result.units == 27
    with pytest.raises(ProviderError) as failed:
        provider.chat(model_id="rate-limited", messages=TURNS, on_delta=lambda piece: None)
    assert failed.value.code == "rate_limited"
