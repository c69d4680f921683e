"""Competitor Intel against a loopback competitor site: fetching (what was fetched, refused and
truncated), the citation validator, the daily cap, exact credits on success and failure,
project scope, what changed, the sweep, exports and the hosted-model path."""

from __future__ import annotations

import csv
import io
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlmodel import Session, select

from core.clock import utcnow
from core.settings import reset_settings_cache
from models import AIModel, CompetitorReport, CompetitorSource, Organization, Tool, UsageEvent
from services import credits
from services import generations as generation_service
from services.caps import Cap, DailyCapReached, cap_status
from services.errors import NotFound, ValidationFailed
from services.generations import GenerationBlocked
from services.intel import fetcher as fetch
from services.intel import reports, runner
from services.intel.export import report_csv
from services.intel.schema import report_validate
from tests.factories import add_member, make_org, make_projects, make_user
from tests.intel_site import HUGE_BYTES, competitor_site

REPORT_CREDITS = 5000  # millicredits: the competitor-report tool's standard run (5K tokens)


@pytest.fixture
def site(monkeypatch):
    monkeypatch.setenv("INTEL_ALLOWED_HOSTS", "127.0.0.1")
    monkeypatch.setenv("INTEL_FETCH_TIMEOUT_SECONDS", "1.5")
    monkeypatch.setenv("INTEL_FETCH_MAX_BYTES", "200000")
    reset_settings_cache()
    with competitor_site() as running:
        yield running
    reset_settings_cache()


def _org(session: Session, *, plan: str = "growth", credits_mc: int = 100_000):
    owner = make_user(session, f"owner-{plan}@rival.test")
    org = make_org(session, owner, name=f"Acme {plan}", plan_key=plan, credits=credits_mc)
    org.billing_profile_added_at = utcnow()
    session.add(org)
    project = make_projects(session, org, 2, name="Launch {index}")
    session.commit()
    return owner, org, project


def _request(site, project_id: int, *paths: str, competitor: str = "Rival Inc", pasted: str = ""):
    return reports.report_request_clean(
        competitor=competitor,
        urls="\n".join(site.url(p) for p in (paths or ("/", "/pricing", "/about"))),
        pasted=pasted,
        focus="pricing",
        project_id=project_id,
    )


def _start(session, user, org, request, key: str) -> CompetitorReport:
    report = reports.report_start(
        session=session, user=user, org_id=org.id, request=request, request_key=key
    )
    session.commit()
    return report


def _run(session, report: CompetitorReport) -> CompetitorReport:
    report_id = report.id
    session.rollback()  # SQLite: every transaction takes the write lock; the worker needs it
    assert runner.report_task(report_id) in ("succeeded", "failed")
    done = session.get(CompetitorReport, report_id, populate_existing=True)
    session.rollback()
    return done


def _balance(session, org) -> int:
    balance = credits.balance_get(session=session, org_id=org.id).balance
    session.rollback()
    return balance


def _used(session, org) -> int:
    used = cap_status(session=session, org_id=org.id, cap=Cap.competitor_reports).used
    session.rollback()
    return used


# --- fetching -------------------------------------------------------------------------------


def test_fetcher_reads_pages_honours_robots_refuses_private_redirects_and_bounds_time_and_size(
    site,
):
    with fetch.Fetcher() as fetcher:
        pricing = fetcher.fetch_page(site.url("/pricing"))
        disallowed = fetcher.fetch_page(site.url("/private"))
        redirected = fetcher.fetch_page(site.url("/to-private"))
        slow = fetcher.fetch_page(site.url("/slow"))
        huge = fetcher.fetch_page(site.url("/huge"))
    assert pricing.outcome == "fetched" and pricing.http_status == 200
    assert len(pricing.content_hash) == 64 and b"Starter" in pricing.body
    assert disallowed.outcome == "refused" and "robots.txt" in disallowed.message
    assert "/private" not in site.requests  # never requested, only robots.txt was read
    assert redirected.outcome == "refused"
    assert "169.254.169.254" in redirected.message and "private or local" in redirected.message
    assert slow.outcome == "failed" and "too long" in slow.message
    assert huge.outcome == "truncated" and len(huge.body) == 200_000 < HUGE_BYTES
    assert "200,000" in huge.message


def test_address_guard_refuses_loopback_private_and_odd_urls_unless_the_host_is_allowed():
    reset_settings_cache()
    for url, words in (
        ("http://127.0.0.1/", "private or local"),
        ("http://localhost/", "private or local"),
        ("http://10.1.2.3/", "private or local"),
        ("http://[::1]/", "private or local"),
        ("ftp://example.com/", "Only http and https"),
        ("http://user:secret@example.com/", "user name or password"),
        ("http://example.com:22/", "Port 22"),
    ):
        with pytest.raises(fetch.FetchRefused, match=words):
            fetch.check_url(url)


# --- the citation validator -----------------------------------------------------------------


def _minimal(sources):
    return {
        "competitor": "Rival",
        "summary": [{"text": "Rival sells campaign software.", "sources": sources}],
    }


def test_citation_validator_accepts_known_sources_and_rejects_an_invented_one():
    assert report_validate(_minimal(["S1", "S2"]), {"S1", "S2"}).summary[0].sources == [
        "S1",
        "S2",
    ]
    with pytest.raises(ValidationFailed) as invented:
        report_validate(_minimal(["S1", "S9"]), {"S1", "S2"})
    assert invented.value.code == "intel_report_invalid"
    assert "S9" in invented.value.message and "not one of this report's sources" in (
        invented.value.message
    )
    with pytest.raises(ValidationFailed):
        report_validate(_minimal([]), {"S1"})  # a claim without a source
    with pytest.raises(ValidationFailed):
        report_validate({**_minimal(["S1"]), "invented_field": 1}, {"S1"})


# --- a report end to end --------------------------------------------------------------------


def test_report_fetches_sources_builds_sections_and_charges_exactly_its_estimate(session, site):
    owner, org, (project, _other) = _org(session)
    before = _balance(session, org)
    request = _request(
        site,
        project.id,
        "/",
        "/pricing",
        "/about",
        "/private",
        pasted="Ad: Ship campaigns 2x faster with Rival",
    )
    report = _start(session, owner, org, request, "k" * 20)
    assert report.status == "queued" and report.held_millicredits == REPORT_CREDITS
    assert _balance(session, org) == before - REPORT_CREDITS  # held
    done = _run(session, report)
    assert done.status == "succeeded", done.failure_reason
    assert [s["status"] for s in done.status_history] == ["queued", "running", "succeeded"]
    assert done.charged_millicredits == REPORT_CREDITS
    assert _balance(session, org) == before - REPORT_CREDITS
    assert credits.ledger_sum(session=session, org_id=org.id) == _balance(session, org)
    sources = session.exec(
        select(CompetitorSource).where(CompetitorSource.report_id == done.id)
    ).all()
    outcomes = {s.source_key: s.outcome for s in sources}
    assert outcomes == {
        "S1": "fetched",
        "S2": "fetched",
        "S3": "fetched",
        "S4": "refused",
        "S5": "fetched",
    }
    assert all(s.fetched_at and len(s.content_hash) == 64 for s in sources if s.source_key != "S4")
    data = done.report
    assert data["headline"]["text"] == "Campaigns that ship themselves"
    tiers = {t["name"]: t for t in data["pricing_tiers"]}
    assert tiers["Starter"]["price"] == "$29" and tiers["Starter"]["period"] == "per month"
    assert tiers["Enterprise"]["price"] == "Contact sales"
    assert "Automation" in tiers["Pro"]["features"]
    assert any("LinkedIn" in c["text"] for c in data["channels"])
    assert data["recommended_actions"] and all(a["prompt"] for a in data["recommended_actions"])
    every_text = json.dumps(data)
    assert "Dana" not in every_text and "tracking" not in every_text  # testimonials, scripts
    usable = {"S1", "S2", "S3", "S5"}
    report_validate(data, usable)  # every stored claim cites a stored, usable source
    assert session.exec(select(UsageEvent).where(UsageEvent.source == "intel")).one().outcome == (
        "succeeded"
    )


def test_failed_report_gives_back_credits_and_its_daily_unit_exactly_once(session, site):
    owner, org, (project, _) = _org(session, plan="free", credits_mc=50_000)
    before = _balance(session, org)
    report = _start(
        session, owner, org, _request(site, project.id, "/private", "/to-private"), "f" * 20
    )
    assert _used(session, org) == 1
    done = _run(session, report)
    assert done.status == "failed" and done.failure_code == "intel_sources_unavailable"
    assert "robots.txt" in done.failure_reason
    assert _balance(session, org) == before
    assert _used(session, org) == 0
    # The sweep and the lease recovery find nothing more to give back.
    assert runner.reports_sweep_stuck(now=utcnow() + timedelta(hours=1)).timed_out == 0
    assert _balance(session, org) == before
    assert _used(session, org) == 0


def test_free_plan_fourth_report_of_the_day_is_refused_with_the_reset_time(
    session, site, monkeypatch
):
    # The three reports stay queued here (no worker); room for them beside the day's cap.
    monkeypatch.setenv("CONCURRENT_RUNS_PER_USER", "10")
    reset_settings_cache()
    owner, org, (project, _) = _org(session, plan="free", credits_mc=100_000)
    for index in range(3):
        _start(session, owner, org, _request(site, project.id, "/"), f"cap-key-{index:04d}")
    before = _balance(session, org)
    with pytest.raises(DailyCapReached) as refused:
        reports.report_start(
            session=session,
            user=owner,
            org_id=org.id,
            request=_request(site, project.id, "/"),
            request_key="cap-key-0004",
        )
    session.rollback()
    assert refused.value.code == "daily_cap_reached"
    assert "3 of 3" in refused.value.message and "resets at 00:00 UTC" in refused.value.message
    assert refused.value.resets_at.hour == 0 and refused.value.resets_at > utcnow()
    assert _balance(session, org) == before  # nothing held for the refused one
    overview = reports.intel_overview(
        session=session, user=owner, org_id=org.id, project_id=project.id
    )
    assert [b.code for b in overview.blockers] == ["daily_cap_reached"]
    assert "0 of 3 reports left today" in overview.cap_line


def test_double_submit_starts_one_report(session, site):
    owner, org, (project, _) = _org(session)
    first = _start(session, owner, org, _request(site, project.id, "/"), "same-key-123")
    second = _start(session, owner, org, _request(site, project.id, "/"), "same-key-123")
    assert first.id == second.id
    assert len(session.exec(select(CompetitorReport)).all()) == 1


def test_blockers_are_named_before_running(session, site):
    owner, org, (project, _) = _org(session, plan="free", credits_mc=1000)
    balance = _balance(session, org)
    org.billing_profile_added_at = None
    session.add(org)
    credits.credits_hold(  # someone else's run keeps all but one credit
        session=session,
        org_id=org.id,
        amount_millicredits=balance - 1000,
        idempotency_key="another-run-hold",
    )
    session.commit()
    codes = {
        b.code
        for b in reports.report_blockers(
            session=session, user=owner, org_id=org.id, project_id=project.id
        )
    }
    assert {"billing_required", "insufficient_credits"} <= codes
    with pytest.raises(GenerationBlocked):
        reports.report_start(
            session=session,
            user=owner,
            org_id=org.id,
            request=_request(site, project.id, "/"),
            request_key="blocked-123",
        )
    session.rollback()


def test_request_validation_says_what_to_change():
    cases = [
        (dict(competitor="", urls="https://a.test"), "Name the competitor"),
        (dict(competitor="R", urls=""), "at least one address"),
        (dict(competitor="R", urls="not a url"), "not a web address"),
        (dict(competitor="R", urls=" ".join(f"https://a.test/{i}" for i in range(6))), "at most 5"),
        (dict(competitor="R", urls="https://a.test", focus="gossip"), "Pick a focus"),
        (dict(competitor="R", urls="https://a.test", pasted="x" * 20_001), "limit is 20,000"),
    ]
    for kwargs, words in cases:
        with pytest.raises(ValidationFailed, match=words):
            reports.report_request_clean(project_id=1, **{"focus": "ads", **kwargs})
    with pytest.raises(ValidationFailed, match="Choose the project"):
        reports.report_request_clean(competitor="R", urls="https://a.test", project_id="")


def test_scoped_editor_sees_only_its_projects_reports_and_viewers_read(session, site):
    owner, org, (project_a, project_b) = _org(session)
    scoped = add_member(session, org, "scoped@rival.test", "editor", [project_b.id])
    viewer = add_member(session, org, "viewer@rival.test", "viewer")
    session.commit()
    report = _start(session, owner, org, _request(site, project_a.id, "/"), "scope-key-1")
    with pytest.raises(NotFound):
        reports.report_get(session=session, user=scoped, org_id=org.id, public_id=report.public_id)
    assert reports.reports_list(session=session, user=scoped, org_id=org.id) == []
    assert (
        reports.report_get(
            session=session, user=viewer, org_id=org.id, public_id=report.public_id
        ).id
        == report.id
    )
    with pytest.raises(NotFound):  # asking for a report in a project it cannot see
        reports.report_start(
            session=session,
            user=scoped,
            org_id=org.id,
            request=_request(site, project_a.id, "/"),
            request_key="scope-key-2",
        )
    session.rollback()
    with pytest.raises(Exception, match="Viewers"):
        reports.report_start(
            session=session,
            user=viewer,
            org_id=org.id,
            request=_request(site, project_a.id, "/"),
            request_key="scope-key-3",
        )
    session.rollback()


def test_what_changed_compares_structured_fields_not_rotating_testimonials(session, site):
    owner, org, (project, _) = _org(session)
    first = _run(session, _start(session, owner, org, _request(site, project.id), "change-key-1"))
    assert first.changes is None  # nothing to compare with yet
    site.version = "v1b"  # only the testimonial rotated
    second = _run(session, _start(session, owner, org, _request(site, project.id), "change-key-2"))
    assert second.changes == [] and second.previous_report_id == first.id
    site.version = "v2"  # a new headline and a new tier
    third = _run(session, _start(session, owner, org, _request(site, project.id), "change-key-3"))
    texts = [c["text"] for c in third.changes]
    assert any(t.startswith("Headline changed") and "busy teams" in t for t in texts)
    assert "New pricing tier: Scale at $199 per month." in texts
    assert third.previous_report_id == second.id


def test_stuck_report_is_timed_out_and_refunded_once(session, site):
    owner, org, (project, _) = _org(session)
    before = _balance(session, org)
    report_id = _start(session, owner, org, _request(site, project.id, "/"), "stuck-key-1").id
    assert runner.report_mark_running(session=session, report_id=report_id, worker_id="w:1")
    later = utcnow() + timedelta(minutes=16)
    assert runner.reports_sweep_stuck(now=later).timed_out == 1
    assert runner.reports_sweep_stuck(now=later).timed_out == 0
    session.expire_all()
    stuck = session.get(CompetitorReport, report_id)
    session.rollback()
    assert stuck.status == "failed" and stuck.failure_code == "timed_out"
    assert _balance(session, org) == before
    assert runner.report_execute(report_id=report_id).status == "failed"  # a late worker: no charge
    assert _balance(session, org) == before


def test_lost_worker_report_is_failed_and_refunded(session, site):
    owner, org, (project, _) = _org(session)
    before = _balance(session, org)
    report_id = _start(session, owner, org, _request(site, project.id, "/"), "lost-key-1").id
    assert runner.report_mark_running(
        session=session, report_id=report_id, worker_id="w:2", lease_seconds=5
    )
    recovered = runner.reports_recover(now=utcnow() + timedelta(seconds=30))
    assert recovered.lost == 1 and recovered.released_millicredits == REPORT_CREDITS
    session.expire_all()
    assert session.get(CompetitorReport, report_id).failure_code == "worker_lost"
    session.rollback()
    assert _balance(session, org) == before


def test_csv_export_neutralises_formulas_and_lists_sources():
    data = {
        "competitor": "Rival",
        "summary": [{"text": '=HYPERLINK("http://evil")', "sources": ["S1"]}],
        "recommended_actions": [],
    }
    rows = list(csv.reader(io.StringIO(report_csv(data, {"S1": "https://rival.test/"}))))
    assert rows[0] == ["section", "claim", "sources", "source_urls"]
    assert rows[1] == ["Summary", '\'=HYPERLINK("http://evil")', "S1", "https://rival.test/"]


# --- the hosted model ----------------------------------------------------------------------


class _FakeModelServer:
    """An OpenAI-compatible chat endpoint on loopback that answers with `answer`."""

    def __init__(self, answer: dict):
        outer = self
        self.answer = answer
        self.prompts: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args):
                return

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.prompts.append(body["messages"][-1]["content"])
                payload = json.dumps(
                    {
                        "id": "chatcmpl-1",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {
                                    "role": "assistant",
                                    "content": json.dumps(outer.answer),
                                },
                            }
                        ],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"


@pytest.mark.parametrize(
    ("cited", "status"), [(["S1"], "succeeded"), (["S7"], "failed")], ids=["valid", "invented"]
)
def test_hosted_model_gets_the_sources_and_must_cite_them(
    session, site, monkeypatch, cited, status
):
    server = _FakeModelServer(_minimal(cited))
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    reset_settings_cache()
    tool = session.exec(select(Tool).where(Tool.key == reports.TOOL_KEY)).one()
    tool.default_model_key = "hosted-text"
    session.add(tool)
    session.commit()
    owner, org, (project, _) = _org(session)
    before = _balance(session, org)
    done = _run(
        session, _start(session, owner, org, _request(site, project.id, "/"), "hosted-key-1")
    )
    server.server.shutdown()
    assert "[S1]" in server.prompts[0] and "Campaigns that ship themselves" in server.prompts[0]
    assert done.status == status
    model = session.exec(select(AIModel).where(AIModel.key == "hosted-text")).one()
    assert done.held_millicredits == 5 * model.rate_millicredits
    if status == "failed":
        assert done.failure_code == "intel_report_invalid" and "S7" in done.failure_reason
        assert _balance(session, org) == before
    else:
        assert _balance(session, org) == before - done.held_millicredits
    assert session.get(Organization, org.id) is not None


def test_the_scheduled_sweep_and_run_recovery_cover_reports(session, site):
    from services.generation_sweep import generations_sweep_stuck
    from services.run_engine import runs_recover

    owner, org, (project, _) = _org(session)
    before = _balance(session, org)
    stuck_id = _start(session, owner, org, _request(site, project.id, "/"), "sweep-hook-1").id
    lost_id = _start(session, owner, org, _request(site, project.id, "/"), "sweep-hook-2").id
    assert runner.report_mark_running(session=session, report_id=lost_id, worker_id="w:3")
    swept = generations_sweep_stuck(now=utcnow() + timedelta(minutes=16))
    assert swept.reports_timed_out == 2 and swept.items == 2
    assert runs_recover().items == 0  # nothing left to recover
    session.expire_all()
    assert {session.get(CompetitorReport, i).failure_code for i in (stuck_id, lost_id)} == {
        "timed_out"
    }
    session.rollback()
    assert _balance(session, org) == before


def test_markdown_export_lists_claims_with_sources_and_never_opens_html(session, site):
    owner, org, (project, _) = _org(session)
    done = _run(session, _start(session, owner, org, _request(site, project.id), "export-key-1"))
    export = reports.report_export(
        session=session, user=owner, org_id=org.id, public_id=done.public_id, fmt="md"
    )
    assert export.filename.startswith("intel-rival-inc-") and export.filename.endswith(".md")
    assert "## Pricing tiers" in export.content and "[S2]" in export.content
    assert f"- S2: {site.url('/pricing')}" in export.content
    csv_export = reports.report_export(
        session=session, user=owner, org_id=org.id, public_id=done.public_id, fmt="csv"
    )
    assert "Pricing tiers,Starter: $29 per month" in csv_export.content
    data = {
        "competitor": "X",
        "summary": [
            {"text": "<img src=x onerror=alert(1)> [link](javascript:x)", "sources": ["S1"]}
        ],
    }
    from services.intel.export import report_markdown

    markdown = report_markdown(data, [("S1", "https://x.test", "")], title="t", created="now")
    assert "<img" not in markdown and "&lt;img" in markdown and "\\[link\\]" in markdown


# --- report quality (the local extractive builder) ----------------------------------------------


def _claims_by_section(data: dict) -> dict[str, list[dict]]:
    sections = {
        name: data[name]
        for name in (
            "summary",
            "positioning",
            "value_propositions",
            "channels",
            "messaging_themes",
            "strengths",
            "weaknesses",
            "opportunities",
            "risks",
        )
    }
    sections.update({f"swot.{part}": claims for part, claims in data["swot"].items()})
    return sections


def test_swot_is_a_synthesis_and_every_section_says_something_of_its_own(session, site):
    owner, org, (project, _other) = _org(session)
    site.version = "v2"  # three priced tiers and a sales-led one: a ladder and a price jump
    done = _run(session, _start(session, owner, org, _request(site, project.id), "q" * 20))
    assert done.status == "succeeded", done.failure_reason
    data = done.report
    sections = _claims_by_section(data)
    swot = data["swot"]
    assert swot["strengths"] and swot["weaknesses"] and swot["opportunities"] and swot["threats"]

    # The SWOT does not repeat the strengths, weaknesses, opportunities or risks lines.
    listed = {
        c["text"]
        for name in ("strengths", "weaknesses", "opportunities", "risks")
        for c in data[name]
    }
    for part, claims in swot.items():
        for claim in claims:
            assert claim["text"] not in listed, (part, claim["text"])
    # No sentence appears in two sections (or twice in one).
    seen: dict[str, str] = {}
    for name, claims in sections.items():
        for claim in claims:
            assert claim["text"].casefold() not in seen, (name, seen.get(claim["text"].casefold()))
            seen[claim["text"].casefold()] = name
    # Every claim cites the sources it was read from; a synthesis cites each one behind it.
    usable = {"S1", "S2", "S3"}
    for name, claims in sections.items():
        for claim in claims:
            assert claim["sources"] and set(claim["sources"]) <= usable, (name, claim)
    ladder = next(c for c in swot["strengths"] if "plan ladder" in c["text"])
    assert "Starter → Pro → Scale → Enterprise" in ladder["text"] and ladder["sources"] == ["S2"]
    proof = next(c for c in swot["strengths"] if "proof point" in c["text"])
    assert set(proof["sources"]) == {"S1", "S3"}  # "4,000+ teams" at home, "Founded in 2019"
    assert any("Pro costs 2.7× Starter" in c["text"] for c in swot["weaknesses"])
    assert not any("free" in c["text"].lower() for c in swot["strengths"])  # there is none
    report_validate(data, usable)


# --- one concurrent-runs limit for Studio runs and reports ----------------------------------------


def test_reports_in_progress_count_toward_the_studio_concurrent_run_limit(
    session, site, monkeypatch
):
    monkeypatch.setenv("CONCURRENT_RUNS_PER_USER", "2")
    reset_settings_cache()
    owner, org, (project, _other) = _org(session)
    for n in range(2):  # two reports queued (no worker here): the person's two slots
        _start(session, owner, org, _request(site, project.id, "/"), f"slot-key-{n}")

    # Studio names the reports as the runs in progress, before Run is pressed...
    studio = generation_service.generation_blockers(
        session=session, user=owner, org_id=org.id, model_key="local-text", project_id=project.id
    )
    slot = next(b for b in studio if b.code == "concurrent_run_limit")
    assert "You already have 2 runs queued or running" in slot.message
    assert "Competitor Intel reports count together" in slot.message
    assert slot.details == {"scope": "user", "limit": 2, "in_progress": 2}
    with pytest.raises(GenerationBlocked) as refused:  # ...and refuses the run
        generation_service.generation_start(
            session=session,
            user=owner,
            org_id=org.id,
            model_key="local-text",
            prompt="A tagline",
            project_id=project.id,
        )
    session.rollback()
    assert refused.value.code == "concurrent_run_limit"

    # A third report is refused the same way, and nothing is held for it.
    before = _balance(session, org)
    with pytest.raises(GenerationBlocked) as third:
        _start(session, owner, org, _request(site, project.id, "/"), "slot-key-3")
    session.rollback()
    assert third.value.code == "concurrent_run_limit"
    assert _balance(session, org) == before

    # When one report finishes, a slot opens again.
    first = session.exec(select(CompetitorReport).order_by(CompetitorReport.id)).first()
    assert _run(session, first).status == "succeeded"
    assert not [
        b
        for b in generation_service.generation_blockers(
            session=session,
            user=owner,
            org_id=org.id,
            model_key="local-text",
            project_id=project.id,
        )
        if b.code == "concurrent_run_limit"
    ]
    session.rollback()
    reset_settings_cache()
