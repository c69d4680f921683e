"""Benchmark: the /v1 API's requests per second and time to first streamed token.

Not a pass/fail test; it only prints. One uvicorn server in this process serves the real /v1
routes (key check, rate limiter, request log, run start, hold and settle on SQLite) next to a
bare Starlette JSON endpoint, the baseline measured in the same run:

  * GET /bare               a JSON constant, no database (baseline);
  * GET /v1/models          key check + plan x org x key model list + one log row;
  * POST /v1/chat/completions (local provider, not streamed): start, hold, run, settle, log;
  * time to first streamed token through the API vs calling the provider directly (a
    loopback OpenAI-compatible server streaming 20 pieces).

Run: `python -m tests.perf.bench_api` (under pytest inside the suite: small size).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable

import httpx
import uvicorn
from sqlmodel import Session, SQLModel
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

import models  # noqa: F401
from core import db
from core.settings import reset_settings_cache
from creative_studio.api import v1
from services.catalog import catalog_sync
from services.providers.openai_compatible import OpenAICompatibleProvider
from tests.factories import free_port
from tests.unit.api_support import ApiWorld, FakeProvider, point_model_at


async def _bare(_request):
    return JSONResponse({"object": "list", "data": []})


def _serve(app) -> tuple[uvicorn.Server, threading.Thread, str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(base + "/bare", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    return server, thread, base


def _rate(call: Callable[[], None], count: int) -> float:
    call()  # warm up
    started = time.perf_counter()
    for _ in range(count):
        call()
    return count / (time.perf_counter() - started)


def _first_piece_seconds(start: Callable[[Callable[[str], None]], None]) -> float:
    seen: list[float] = []
    began = time.perf_counter()
    start(lambda _piece: seen.append(time.perf_counter()) if not seen else None)
    return seen[0] - began


def run(count: int = 200, streams: int = 20) -> dict[str, float]:
    saved = {k: os.environ.get(k) for k in ("API_RATE_LIMIT_PER_MINUTE", "STORAGE_LOCAL_DIR")}
    tmp = tempfile.mkdtemp(prefix="bench-api-")
    os.environ["API_RATE_LIMIT_PER_MINUTE"] = "0"
    os.environ["STORAGE_LOCAL_DIR"] = os.path.join(tmp, "assets")
    reset_settings_cache()
    engine = db.make_engine(f"sqlite:///{tmp}/bench.db")
    SQLModel.metadata.create_all(engine)
    db.set_engine(engine)
    fake = FakeProvider("stream")
    with Session(engine, expire_on_commit=False) as session:
        catalog_sync(session=session)
        session.commit()
        world = ApiWorld(session, balance=10**6)
        point_model_at(session, "hosted-text", fake.url)
        secret = world.key()
    app = Starlette(routes=[Route("/bare", _bare), *v1.v1_routes()])
    server, thread, base = _serve(app)
    headers = {"Authorization": f"Bearer {secret}"}
    chat = {"model": "local-text", "messages": [{"role": "user", "content": "Spring sale"}]}
    results: dict[str, float] = {}
    try:
        with httpx.Client(timeout=60) as http:
            results["bare Starlette JSON"] = _rate(lambda: http.get(base + "/bare"), count)
            results["GET /v1/models"] = _rate(
                lambda: http.get(base + "/v1/models", headers=headers), count
            )
            results["chat (local, not streamed)"] = _rate(
                lambda: http.post(base + "/v1/chat/completions", json=chat, headers=headers),
                max(10, count // 5),
            )

            def via_api(on_piece):
                body = {**chat, "model": "hosted-text", "stream": True}
                with http.stream(
                    "POST", base + "/v1/chat/completions", json=body, headers=headers
                ) as r:
                    for line in r.iter_lines():
                        if '"content": "word' in line:
                            on_piece(line)
                    # read to the end so the run settles before the next one

            provider = OpenAICompatibleProvider(base_url=fake.url, api_key="bench")

            def direct(on_piece):
                provider.generate_text(model_id="m", prompt="Spring sale", on_delta=on_piece)

            api_ttft = statistics.median(_first_piece_seconds(via_api) for _ in range(streams))
            direct_ttft = statistics.median(_first_piece_seconds(direct) for _ in range(streams))
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        fake.close()
        db.set_engine(None)
        engine.dispose()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        reset_settings_cache()
    baseline = results["bare Starlette JSON"]
    print("\n/v1 API, sequential requests from one client, same process and run (SQLite):")
    for name, per_second in results.items():
        print(f"  {name:<28} {per_second:8.1f} req/s   x{per_second / baseline:5.2f} of bare")
    print(
        f"  time to first streamed token: API {api_ttft * 1000:.1f} ms, provider directly "
        f"{direct_ttft * 1000:.1f} ms (x{api_ttft / direct_ttft:.1f})"
    )
    results["ttft_api_ms"] = api_ttft * 1000
    results["ttft_direct_ms"] = direct_ttft * 1000
    return results


def test_bench_api_small():
    run(count=20, streams=3)


if __name__ == "__main__":
    run()
