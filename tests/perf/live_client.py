"""A Studio tab over the app's real websocket, for the end-to-end benchmarks.

The browser and the backend speak socket.io at path ``/_event`` (namespace ``/_event``), as
Reflex 0.10's ``state.js`` does (see ``EventNamespace`` in reflex/app.py):

* the tab's token is a random UUID, sent as the ``token`` query parameter of the connection;
* the hydrate event rides in the CONNECT packet's auth: ``{"event": {"name":
  "<root state>.hydrate_and_load", "payload": {"hashes": [...]}, "router_data": {"pathname",
  "asPath"}}, "state_schema": ...}`` (the hashes of the compiled defaults let the backend send
  only what differs; without a state_schema, sent by none here, the version check is skipped).
  The backend answers with the state snapshot, then runs the page's on_load handlers and
  finally ``set_is_hydrated(True)``;
* every later event is ``emit("event", {"name", "payload", "router_data"})``;
* the backend answers with ``"event"`` messages ``{"delta": {state: {var + "_rx_state_":
  value}}, "events": [...]}``. There is no "final" flag any more (deprecated since 0.9) and a
  handler that changes nothing sends nothing, so a round trip here ends at the first delta
  that shows what the event changes (`Tab.send` takes that condition).

The session cookie is HttpOnly: it is made in the app's database by the services (handoff and
activation, as ``tests/factories.signed_in_cookie``) and sent in the websocket's headers, with
the app's own Origin. Used by ``bench_studio_websocket.py`` and ``bench_sessions.py``.

The tabs of one person share one HTTP client (`_browser`), as a browser's tabs share its
network stack: a new tab then costs its websocket and its socket.io handshake, not a new
client with its own connector and name resolution (several milliseconds of the client's own
time, which a page open would otherwise count as the server's).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.live_app import ROOT, AppServer, running_app

ROOT_STATE = "reflex___state____state"
STUDIO_STATE = f"{ROOT_STATE}.state___studio____studio_state"
NAMESPACE = "/_event"
# The benchmark's own build directory (kept between runs like .web-test, so only the first run
# installs the frontend's packages).
BENCH_WEB = ROOT / ".web-test-bench"
FIELD = "_rx_state_"

Delta = dict[str, dict[str, Any]]
Condition = Callable[[Delta], bool]


def changed(state: str, var: str, value: Any = ...) -> Condition:
    """A delta that carries `var` of `state` (equal to `value`, when given)."""
    key = var + FIELD

    def check(delta: Delta) -> bool:
        values = delta.get(state)
        if not values or key not in values:
            return False
        return value is ... or values[key] == value

    return check


HYDRATED = changed(ROOT_STATE, "is_hydrated", True)


# One HTTP client per person and event loop: (id(loop), cookie) -> aiohttp.ClientSession.
_BROWSERS: dict[tuple[int, str], Any] = {}


def _browser(cookie: str) -> Any:
    """The HTTP client of the person with this cookie (created on first use, in the loop)."""
    import aiohttp  # python-socketio's client transport

    key = (id(asyncio.get_running_loop()), cookie)
    http = _BROWSERS.get(key)
    if http is None or http.closed:
        http = _BROWSERS[key] = aiohttp.ClientSession()
    return http


async def _close_browsers() -> None:
    loop = id(asyncio.get_running_loop())
    for key in [key for key in _BROWSERS if key[0] == loop]:
        await _BROWSERS.pop(key).close()


def run_async(work: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """`asyncio.run(work())` on a thread of its own: under pytest, Playwright's sync API may
    already run an event loop on the main thread for the rest of the session."""
    result: dict[str, Any] = {}

    async def main() -> Any:
        try:
            return await work()
        finally:
            await _close_browsers()

    def target() -> None:
        try:
            result["value"] = asyncio.run(main())
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
            result["error"] = error

    thread = threading.Thread(target=target, name="bench-websocket-client")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def studio_event(handler: str) -> str:
    return f"{STUDIO_STATE}.{handler}"


def initial_state_hashes(base_url: str) -> list[str] | None:
    """The compiled ``initialStateHashes`` a browser sends with its first hydrate (then the
    backend sends only the vars that differ from the defaults the page already holds), read
    from the production bundle; None when they cannot be found (the full snapshot is sent)."""
    try:
        page = httpx.get(base_url + "/sign-in", timeout=10, follow_redirects=True).text
        for asset in dict.fromkeys(re.findall(r"/assets/[\w.-]+\.js", page)):
            code = httpx.get(base_url + asset, timeout=10).text
            name = re.search(r"initialStateHashes:\(\)=>([\w$]+)", code)
            if not name:
                continue
            value = re.search(
                rf"[,;\s]{re.escape(name.group(1))}=(`[^`]*`\.split\(`\.`\)|\[[^\]]*\]|`[^`]*`)",
                code,
            )
            if not value:
                return None
            raw = value.group(1)
            if raw.startswith("["):
                return json.loads(raw)
            return raw.split("`")[1].split(".")
    except (httpx.HTTPError, ValueError):
        return None
    return None


class Tab:
    """One browser tab: its own token, the signed-in cookie, one page address."""

    def __init__(self, base_url: str, cookie: str, path: str, hashes: list[str] | None = None):
        import socketio  # python-socketio, a Reflex dependency (its client needs aiohttp)

        self.base_url = base_url
        self.cookie = cookie
        self.path = path
        self.hashes = hashes
        self.token = str(uuid.uuid4())
        self.state: Delta = {}
        self._waiters: list[tuple[Condition, asyncio.Future]] = []
        self.sio = socketio.AsyncClient(reconnection=False, http_session=_browser(cookie))
        self.sio.on("event", self._on_event, namespace=NAMESPACE)

    def var(self, state: str, name: str) -> Any:
        return self.state.get(state, {}).get(name + FIELD)

    async def _on_event(self, update: dict) -> None:
        arrived = time.perf_counter()
        delta = update.get("delta") or {}
        for state, values in delta.items():
            self.state.setdefault(state, {}).update(values)
        for waiter in list(self._waiters):
            condition, future = waiter
            if not future.done() and condition(delta):
                future.set_result(arrived)
                self._waiters.remove(waiter)

    def _expect(self, condition: Condition) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((condition, future))
        return future

    def _router_data(self) -> dict:
        return {"pathname": self.path.split("?")[0], "asPath": self.path}

    async def open(self, timeout: float = 60) -> float:
        """Connect, hydrate and run the page's on_load handlers; seconds until hydrated."""
        payload = {"hashes": self.hashes} if self.hashes else {}
        auth = {
            "event": {
                "name": f"{ROOT_STATE}.hydrate_and_load",
                "payload": payload,
                "router_data": self._router_data(),
            }
        }
        hydrated = self._expect(HYDRATED)
        started = time.perf_counter()
        await self.sio.connect(
            f"{self.base_url}?token={self.token}",
            headers={"Cookie": self.cookie, "Origin": self.base_url},
            auth=auth,
            transports=["websocket"],
            namespaces=[NAMESPACE],
            socketio_path=NAMESPACE,
            wait_timeout=timeout,
        )
        return await asyncio.wait_for(hydrated, timeout) - started

    async def send(
        self, name: str, payload: dict | None, until: Condition, timeout: float = 30
    ) -> float:
        """Emit one event; seconds until the first delta that satisfies `until`."""
        arrived = self._expect(until)
        started = time.perf_counter()
        await self.sio.emit(
            "event",
            {"name": name, "payload": payload or {}, "router_data": self._router_data()},
            namespace=NAMESPACE,
        )
        return await asyncio.wait_for(arrived, timeout) - started

    async def wait_for(self, until: Condition, timeout: float = 60) -> None:
        await asyncio.wait_for(self._expect(until), timeout)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.sio.disconnect()


# --- the signed-in world in the app's database ------------------------------------------------

_WORLD = """
import json, uuid
from sqlmodel import Session
from core.db import get_engine
from tests.factories import add_member, make_org, make_user, signed_in_cookie
people, per_org = PEOPLE, PER_ORG
tag = uuid.uuid4().hex[:8]
signed_in = []
with Session(get_engine(), expire_on_commit=False) as s:
    for first in range(0, people, per_org):
        owner = make_user(s, f"bench-{first}-{tag}@perf.test")
        org = make_org(s, owner, f"Bench {first} {tag}", slug=f"bench-{first}-{tag}",
                       plan_key="growth", credits=10**9)
        users = [owner] + [
            add_member(s, org, f"bench-{index}-{tag}@perf.test", "editor")
            for index in range(first + 1, min(people, first + per_org))
        ]
        s.commit()
        signed_in += [(org.slug, signed_in_cookie(s, user)) for user in users]
print(json.dumps(signed_in))
"""


def signed_in_world(server: AppServer, people: int = 1, per_org: int = 10) -> list[tuple[str, str]]:
    """`people` signed-in people in the app's database, in organizations on Growth with
    credits (`per_org` members each: an owner and editors), each with an activated session;
    returns (organization slug, Cookie header) per person, owners first in each organization."""
    code = _WORLD.replace("PEOPLE", str(people)).replace("PER_ORG", str(per_org))
    return [tuple(pair) for pair in json.loads(server.run_python(code).strip().splitlines()[-1])]


# --- the backend process --------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def process_tree(pid: int) -> list[int]:
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += _children(current)
    return tree


def backend_pids(pid: int) -> list[int]:
    """The backend worker processes under `reflex run` (the process itself if it has none)."""
    return process_tree(pid)[1:] or [pid]


def rss_bytes(pid: int) -> int:
    """VmRSS of the backend worker processes of the `reflex run` with process id `pid`."""
    total = 0
    for each in backend_pids(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the backend worker processes have used so far."""
    ticks = 0
    for each in backend_pids(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def scheduler_seconds(pid: int) -> tuple[float, float]:
    """(ran, waited for a CPU) so far, in seconds, of the backend workers' main threads (where
    their event loops run), from /proc/<pid>/schedstat; (0, 0) where the kernel keeps none."""
    ran = waited = 0
    for each in backend_pids(pid):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{each}/schedstat").read_text().split()
            ran, waited = ran + int(fields[0]), waited + int(fields[1])
    return ran / 1e9, waited / 1e9


@contextlib.contextmanager
def bench_app(tmp_dir: Path) -> Iterator[AppServer]:
    """The app as deployed on one host without Redis: one backend worker, state in memory
    (rxconfig.py), on its own build directory so a browser-test server is not disturbed."""
    overrides = {"REFLEX_WEB_WORKDIR": os.environ.get("CS_BENCH_WEB_WORKDIR", str(BENCH_WEB))}
    saved = os.environ.pop("REDIS_URL", None)
    try:
        with running_app(Path(tmp_dir) / "data", overrides) as server:
            yield server
    finally:
        if saved is not None:
            os.environ["REDIS_URL"] = saved
