"""Providers that cannot hurt anyone: hung and trickling endpoints, usage figures they get wrong.

Every provider here is a real loopback HTTP server used as the OpenAI-compatible base URL:
one that never answers, one that trickles its answer a byte at a time, and one that reports
the usage figures a misbehaving provider sends. Runs go through the same run engine the
studio uses (`generation_run_async` from the event loop, `generation_run` from a thread).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlmodel import select

from core.settings import reset_settings_cache
from models import Generation, UsageEvent
from services import credits, generations
from services.providers.local import LocalProvider
from services.providers.openai_compatible import CHARS_PER_TOKEN
from tests.unit.test_generations import World, ledger

# A generous bound so a broken run engine fails the test instead of hanging it. Never a
# measured figure: nothing below asserts how long anything took.
SAFETY_SECONDS = 120
ANSWER = "Fresh copy for spring."


@pytest.fixture(autouse=True)
def _local_assets(tmp_path, monkeypatch):
    monkeypatch.setenv("STORAGE_LOCAL_DIR", str(tmp_path / "assets"))
    monkeypatch.delenv("STORAGE_BUCKET", raising=False)
    reset_settings_cache()


class Endpoint(BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint whose behaviour is picked by the model name."""

    protocol_version = "HTTP/1.1"
    state: dict  # set per server (see `endpoint`)

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_POST(self):  # noqa: N802 - http.server API
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        model = body.get("model", "")
        with self.state["lock"]:
            self.state["received"] += 1
            self.state["waiting"] += 1
            self.state["most_waiting"] = max(self.state["most_waiting"], self.state["waiting"])
        try:
            if model == "hang":
                self.state["release"].wait(SAFETY_SECONDS)
                return self._send(503, json.dumps({"error": {"message": "closing"}}).encode())
            if model == "trickle":
                return self._trickle()
            return self._send(200, json.dumps(_completion(self.state["usage"])).encode())
        finally:
            with self.state["lock"]:
                self.state["waiting"] -= 1

    def _send(self, status: int, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _trickle(self) -> None:
        """A valid answer, one byte about every second: each read sees data long before any
        per-read timeout, so only a total deadline can end the call."""
        data = json.dumps(_completion(27)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.flush()
        sent = 0
        try:
            for byte in data:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                sent += 1
                if self.state["release"].wait(1.0):
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client hung up: what a deadline looks like from here
        self.state["trickled"] = (sent, len(data))
        self.state["trickle_done"].set()
        self.close_connection = True


def _completion(total_tokens) -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": ANSWER},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": total_tokens},
    }


@pytest.fixture
def endpoint(monkeypatch):
    """A fresh loopback endpoint (so a fresh provider pool) configured as OPENAI_BASE_URL."""
    state = {
        "lock": threading.Lock(),
        "received": 0,
        "waiting": 0,
        "most_waiting": 0,
        "release": threading.Event(),
        "trickle_done": threading.Event(),
        "usage": 27,
    }
    handler = type("Handler", (Endpoint,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}/v1")
    reset_settings_cache()
    yield state
    state["release"].set()
    server.shutdown()
    server.server_close()


def _use_model(world: World, provider_model_id: str) -> None:
    """Point the hosted text model at the endpoint's behaviour of that name."""
    from models import AIModel

    model = world.session.exec(select(AIModel).where(AIModel.key == "hosted-text")).one()
    model.provider_model_id = provider_model_id
    world.session.add(model)
    world.session.commit()


def _wait_for(condition, what: str) -> None:
    give_up = time.monotonic() + SAFETY_SECONDS
    while not condition():
        if time.monotonic() > give_up:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


# --- hung providers ---------------------------------------------------------------------------


def test_ten_hung_provider_calls_do_not_hold_back_an_offline_run(session, endpoint, monkeypatch):
    monkeypatch.setenv("PROVIDER_CONCURRENCY", "4")
    monkeypatch.setenv("PROVIDER_CALL_DEADLINE_SECONDS", "600")  # only the endpoint ends them
    monkeypatch.setenv("CONCURRENT_RUNS_PER_USER", "20")
    monkeypatch.setenv("CONCURRENT_RUNS_PER_ORG", "20")
    reset_settings_cache()
    world = World(session)
    _use_model(world, "hang")
    hung_ids = [world.start(model_key="hosted-text", prompt=f"Hung {n}").id for n in range(10)]
    local_id = world.start(model_key="local-text", prompt="Spring sale").id
    session.rollback()  # hold no database lock while the runs work

    async def scenario():
        hung = [asyncio.create_task(generations.generation_run_async(gid)) for gid in hung_ids]
        # The endpoint's pool admits 4 calls; the other 6 wait in its queue.
        await asyncio.to_thread(_wait_for, lambda: endpoint["received"] >= 4, "4 hung calls")
        local = await generations.generation_run_async(local_id)
        pending_after_local = sum(not task.done() for task in hung)
        # The event loop's default executor is not used up by the hung calls either.
        default_executor_free = await asyncio.to_thread(lambda: "free")
        received_while_hung = endpoint["received"]
        endpoint["release"].set()  # the endpoint finally answers: 503
        finished = await asyncio.wait_for(asyncio.gather(*hung), SAFETY_SECONDS)
        return local, pending_after_local, default_executor_free, received_while_hung, finished

    local, pending, default_executor_free, received_while_hung, finished = asyncio.run(scenario())
    assert local.status == "succeeded" and "Spring sale" in local.output_text
    assert pending == 10  # the offline run finished while every hung call was still pending
    assert default_executor_free == "free"
    assert received_while_hung == 4 and endpoint["most_waiting"] == 4  # bounded per endpoint
    assert [run.status for run in finished] == ["failed"] * 10
    assert {run.failure_code for run in finished} == {"provider_error"}
    for run in finished:  # each hung run gave its hold back, once
        assert [kind for kind, _, _ in ledger(session, run.id)] == ["hold", "release"]
    assert world.balance() == 3000 * 1000 - local.charged_millicredits
    assert credits.ledger_sum(session=session, org_id=world.org.id) == world.balance()


# --- a provider that trickles -----------------------------------------------------------------


def test_a_trickling_provider_is_cut_off_at_the_deadline_and_credits_come_back_once(
    session, endpoint, monkeypatch
):
    monkeypatch.setenv("PROVIDER_CALL_DEADLINE_SECONDS", "3")
    reset_settings_cache()
    world = World(session)
    _use_model(world, "trickle")
    generation = world.start(model_key="hosted-text")
    held = generation.held_millicredits
    assert world.balance() == 3000 * 1000 - held

    done = generations.generation_run(session=session, generation_id=generation.id)

    assert done.status == "failed" and done.failure_code == "timeout"
    assert "did not finish within 3 seconds" in done.failure_reason
    assert "credits were returned" in done.failure_reason
    entries = ledger(session, generation.id)
    assert [kind for kind, _, _ in entries] == ["hold", "release"]
    assert entries[1] == ("release", f"generation:{generation.id}:release", held)
    assert world.balance() == 3000 * 1000
    assert credits.ledger_sum(session=session, org_id=world.org.id) == world.balance()
    # The provider saw the client hang up in the middle of its answer.
    assert endpoint["trickle_done"].wait(SAFETY_SECONDS)
    sent, total = endpoint["trickled"]
    assert 0 < sent < total


class Stuck(LocalProvider):
    """An adapter that blocks outside HTTP, where no socket timeout can reach it."""

    def __init__(self, name: str):
        self.pool_key = f"stuck {name}"
        self.release = threading.Event()
        self.calls = 0

    def generate_text(self, **kwargs):
        self.calls += 1
        self.release.wait(SAFETY_SECONDS)
        return super().generate_text(**kwargs)


def test_runs_stuck_past_their_deadline_fail_once_and_a_queued_one_never_starts(
    session, monkeypatch, request
):
    monkeypatch.setenv("PROVIDER_CONCURRENCY", "1")
    monkeypatch.setenv("PROVIDER_CALL_DEADLINE_SECONDS", "1")
    reset_settings_cache()
    world = World(session)
    stuck = Stuck(request.node.name)
    first, second = (world.start(prompt=f"Run {n}").id for n in (1, 2))
    session.rollback()

    async def both():
        return await asyncio.gather(
            generations.generation_run_async(first, provider=stuck),
            generations.generation_run_async(second, provider=stuck),
        )

    runs = asyncio.run(both())
    assert [run.failure_code for run in runs] == ["timeout", "timeout"]
    assert stuck.calls == 1  # the second call waited in the queue and was dropped unstarted
    assert world.balance() == 3000 * 1000
    # What the stuck call sends in the end is kept with its run (whichever of the two got
    # the pool's thread), never charged; the run that never started has nothing to keep.
    stuck.release.set()
    _wait_for(
        lambda: any(_fresh(session, gid).late_result for gid in (first, second)),
        "the late result to be kept",
    )
    kept, dropped = sorted(
        (_fresh(session, gid) for gid in (first, second)), key=_without_late_result
    )
    assert (
        kept.status == "failed"
        and f"Run {1 if kept.id == first else 2}" in (kept.late_result["text"])
    )
    assert dropped.late_result is None
    for gid in (first, second):
        assert [kind for kind, _, _ in ledger(session, gid)] == ["hold", "release"]
    assert world.balance() == 3000 * 1000
    assert credits.ledger_sum(session=session, org_id=world.org.id) == world.balance()


def _without_late_result(row: Generation) -> bool:
    return row.late_result is None


def _fresh(session, generation_id: int) -> Generation:
    session.rollback()
    row = session.get(Generation, generation_id)
    session.refresh(row)
    session.rollback()
    return row


# --- usage figures a provider gets wrong ------------------------------------------------------


def _tokens(text: str) -> int:
    return max(1, -(-len(text) // CHARS_PER_TOKEN))


@pytest.mark.parametrize("reported", [10**9, True, -5, "12", 3.7, 27])
def test_usage_figures_from_the_provider_are_validated_and_clamped(session, endpoint, reported):
    endpoint["usage"] = reported
    world = World(session)
    _use_model(world, "usage")
    prompt = "Spring sale on trail shoes"
    generation = world.start(model_key="hosted-text", prompt=prompt)
    held = generation.held_millicredits
    rate = 2000  # hosted-text: 2 credits per 1K tokens = 2 millicredits per token

    done = generations.generation_run(session=session, generation_id=generation.id)

    if reported == 10**9:
        expected = held  # never above the hold, the estimate shown before the run
    elif reported == 27:
        expected = 27 * rate // 1000
    else:  # not a usable figure: priced on the estimated tokens, as when none is reported
        expected = (_tokens(prompt) + _tokens(ANSWER)) * rate // 1000
    assert 0 < expected <= held
    assert done.status == "succeeded" and done.output_text == ANSWER
    assert done.charged_millicredits == expected
    assert [kind for kind, _, _ in ledger(session, generation.id)] == ["hold", "settle"]
    assert sum(amount for _, _, amount in ledger(session, generation.id)) == -expected
    usage = session.exec(select(UsageEvent).where(UsageEvent.generation_id == generation.id)).one()
    assert usage.millicredits == expected
    reported_as = {10**9: 10_000_000, 27: 27}  # kept as reported, within a sane range
    assert usage.provider_units == reported_as.get(reported)
    assert world.balance() == 3000 * 1000 - expected
    assert credits.ledger_sum(session=session, org_id=world.org.id) == world.balance()
    assert session.get(Generation, generation.id).status == "succeeded"
