"""Verified domains: the DNS TXT check against a real DNS server on loopback (dnspython on both
sides: the app's resolver asks over UDP, the server below answers from a dict)."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from sqlmodel import Session, select

from core import clock
from core.settings import reset_settings_cache
from models import AuditLogEntry, OrgDomain
from services import domains
from services.errors import DomainError
from tests.factories import add_member, make_org, make_user


class LoopbackDns:
    """A tiny authoritative DNS server: TXT answers from `records`, NXDOMAIN otherwise."""

    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}
        self.queries: list[str] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, address = self.sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            query = dns.message.from_wire(data)
            response = dns.message.make_response(query)
            question = query.question[0]
            name = question.name.to_text(omit_final_dot=True).lower()
            self.queries.append(name)
            values = self.records.get(name)
            if values is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
            elif question.rdtype == dns.rdatatype.TXT:
                response.answer.append(
                    dns.rrset.from_text_list(
                        question.name, 60, "IN", "TXT", [f'"{value}"' for value in values]
                    )
                )
            self.sock.sendto(response.to_wire(), address)

    def resolver(self):
        resolver = domains.dns.resolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = self.port
        resolver.lifetime = 2.0
        return resolver

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture(scope="module")
def dns_server() -> Iterator[LoopbackDns]:
    server = LoopbackDns()
    yield server
    server.close()


@pytest.fixture
def owner_org(session):
    owner = make_user(session, "olivia@acme-corp.test", "Olivia Owner")
    org = make_org(session, owner, "Acme Corp", slug="acme-corp")
    session.commit()
    return owner, org


def test_domain_names_are_normalised_and_nonsense_is_refused_with_the_reason():
    assert domains.domain_normalize(" Example.COM. ") == "example.com"
    assert domains.domain_normalize("@example.com") == "example.com"
    assert domains.domain_normalize("bücher.example") == "xn--bcher-kva.example"
    for bad, why in [
        ("", "empty"),
        ("localhost", "at least one dot"),
        ("https://example.com/x", "scheme"),
        ("-bad.example.com", "dash"),
        ("10.0.0.1", "IP address"),
        ("exa_mple.com", "letters, digits"),
    ]:
        with pytest.raises(DomainError) as caught:
            domains.domain_normalize(bad)
        assert caught.value.code == "domain_invalid" and why in caught.value.message


def test_adding_twice_keeps_one_claim_and_admins_cannot_add(session, owner_org):
    owner, org = owner_org
    first = domains.domain_add(session=session, actor=owner, org_id=org.id, domain="acme-corp.test")
    again = domains.domain_add(session=session, actor=owner, org_id=org.id, domain="ACME-corp.test")
    session.commit()
    assert first.id == again.id and first.verified_at is None
    assert len(session.exec(select(OrgDomain)).all()) == 1
    admin = add_member(session, org, "adam@acme-corp.test", "admin")
    with pytest.raises(DomainError) as caught:
        domains.domain_add(session=session, actor=admin, org_id=org.id, domain="other.test")
    assert caught.value.code == "role_forbidden" and "owner" in caught.value.message


def test_verify_says_what_dns_has_until_the_record_is_published(session, owner_org, dns_server):
    owner, org = owner_org
    claim = domains.domain_add(session=session, actor=owner, org_id=org.id, domain="acme-corp.test")
    session.commit()
    record_name = "_creative-studio.acme-corp.test"
    expected = domains.txt_record_value(claim.verification_token)
    dns_server.records.pop(record_name, None)

    missing = domains.domain_verify(
        session=session,
        actor=owner,
        org_id=org.id,
        domain_id=claim.id,
        resolver=dns_server.resolver(),
    )
    session.commit()
    assert not missing.verified and not missing.found
    assert f"No TXT record was found at {record_name}" in missing.message
    assert expected in missing.message  # says exactly what to publish
    assert record_name in dns_server.queries

    dns_server.records[record_name] = [
        "google-site-verification=abc",
        "creative-studio-verification=old",
    ]
    wrong = domains.domain_verify(
        session=session,
        actor=owner,
        org_id=org.id,
        domain_id=claim.id,
        resolver=dns_server.resolver(),
    )
    session.commit()
    assert not wrong.verified
    assert (
        "has 2 TXT records" in wrong.message and "creative-studio-verification=old" in wrong.message
    )
    assert session.get(OrgDomain, claim.id).last_error == wrong.message

    dns_server.records[record_name] = ["google-site-verification=abc", expected]
    ok = domains.domain_verify(
        session=session,
        actor=owner,
        org_id=org.id,
        domain_id=claim.id,
        resolver=dns_server.resolver(),
    )
    session.commit()
    row = session.get(OrgDomain, claim.id)
    assert ok.verified and ok.found and row.verified_at is not None and row.last_error == ""
    assert domains.verified_domain_org_id(session=session, email="Nina@ACME-corp.test") == org.id
    actions = [e.action for e in session.exec(select(AuditLogEntry)).all()]
    assert actions.count("sso.domain_verified") == 1 and "sso.domain_added" in actions


def test_a_domain_verified_by_one_organization_cannot_be_verified_by_another(
    session, owner_org, dns_server
):
    owner, org = owner_org
    claim = domains.domain_add(session=session, actor=owner, org_id=org.id, domain="shared.test")
    dns_server.records["_creative-studio.shared.test"] = [
        domains.txt_record_value(claim.verification_token)
    ]
    domains.domain_verify(
        session=session,
        actor=owner,
        org_id=org.id,
        domain_id=claim.id,
        resolver=dns_server.resolver(),
    )
    session.commit()
    rival = make_user(session, "rita@rival.test")
    rival_org = make_org(session, rival, "Rival", slug="rival")
    session.commit()
    with pytest.raises(DomainError) as caught:
        domains.domain_add(session=session, actor=rival, org_id=rival_org.id, domain="shared.test")
    assert caught.value.code == "domain_taken"


def test_dns_not_answering_is_named_and_nothing_is_recorded(session, owner_org):
    owner, org = owner_org
    claim = domains.domain_add(session=session, actor=owner, org_id=org.id, domain="acme-corp.test")
    session.commit()
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # bound, never answers
    silent.bind(("127.0.0.1", 0))
    try:
        resolver = domains.dns.resolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = silent.getsockname()[1]
        resolver.lifetime = 0.5
        with pytest.raises(DomainError) as caught:
            domains.domain_verify(
                session=session, actor=owner, org_id=org.id, domain_id=claim.id, resolver=resolver
            )
    finally:
        silent.close()
    session.rollback()
    assert caught.value.code == "domain_dns_unavailable" and "Try" in caught.value.message
    assert session.get(OrgDomain, claim.id).last_checked_at is None


def test_dns_nameservers_setting_points_the_resolver_at_a_server(session, owner_org, dns_server):
    owner, org = owner_org
    claim = domains.domain_add(session=session, actor=owner, org_id=org.id, domain="env.test")
    dns_server.records["_creative-studio.env.test"] = [
        domains.txt_record_value(claim.verification_token)
    ]
    os.environ["DNS_NAMESERVERS"] = f"127.0.0.1:{dns_server.port}"
    reset_settings_cache()
    try:
        check = domains.domain_verify(
            session=session, actor=owner, org_id=org.id, domain_id=claim.id
        )
    finally:
        os.environ.pop("DNS_NAMESERVERS", None)
        reset_settings_cache()
    assert check.verified


# --- the scheduled re-check -------------------------------------------------------------------


def _verified(session, org, dns_server, name: str = "acme-corp.test") -> OrgDomain:
    row = OrgDomain(org_id=org.id, domain=name, verification_token="tok-" + name)
    row.verified_at = clock.utcnow() - timedelta(days=30)
    session.add(row)
    session.commit()
    dns_server.records[domains.txt_record_name(name)] = [
        domains.txt_record_value(row.verification_token)
    ]
    return row


def _reload(session, row: OrgDomain) -> OrgDomain:
    session.rollback()
    return session.get(OrgDomain, row.id, populate_existing=True)


def test_a_verified_domain_whose_record_disappeared_is_unverified_after_n_failed_checks(
    session, owner_org, dns_server, monkeypatch
):
    owner, org = owner_org
    monkeypatch.setenv("DOMAIN_RECHECK_FAILURES", "3")
    reset_settings_cache()
    start = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    clock.freeze(start)
    row = _verified(session, org, dns_server)
    record = domains.txt_record_name(row.domain)

    first = domains.domains_recheck_due(session=session, resolver=dns_server.resolver())
    assert (first.checked, first.still_verified, first.unverified) == (1, 1, [])
    again = domains.domains_recheck_due(session=session, resolver=dns_server.resolver())
    assert again.checked == 0  # checked just now: not due until RECHECK_INTERVAL has passed

    del dns_server.records[record]  # the TXT record is removed at the DNS provider
    for failed in (1, 2):
        clock.freeze(start + (domains.RECHECK_INTERVAL + timedelta(minutes=1)) * failed)
        result = domains.domains_recheck_due(session=session, resolver=dns_server.resolver())
        assert (result.checked, result.failed_checks, result.unverified) == (1, 1, [])
        row = _reload(session, row)
        assert row.verified_at is not None and row.recheck_failures == failed
        assert f"({failed} of 3 failed checks in a row)" in row.last_error
        assert "Publish the record again" in row.last_error

    clock.freeze(start + (domains.RECHECK_INTERVAL + timedelta(minutes=1)) * 3)
    result = domains.domains_recheck_due(session=session, resolver=dns_server.resolver())
    assert result.unverified == ["acme-corp.test"]
    row = _reload(session, row)
    assert row.verified_at is None and row.unverified_at is not None
    assert row.last_error.startswith("Marked unverified on 2026-11-21 03:03 UTC: ")
    assert "missing in 3 scheduled checks in a row" in row.last_error
    assert domains.verified_domain_org_id(session=session, email="nina@acme-corp.test") is None
    audit = session.exec(
        select(AuditLogEntry).where(AuditLogEntry.action == "sso.domain_unverified")
    ).one()
    assert audit.details["failed_checks"] == 3 and audit.actor_user_id is None
    # No longer verified: the job leaves it alone; the owner publishes and verifies again.
    clock.freeze(start + domains.RECHECK_INTERVAL * 5)
    assert domains.domains_recheck_due(session=session, resolver=dns_server.resolver()).checked == 0
    dns_server.records[record] = [domains.txt_record_value(row.verification_token)]
    check = domains.domain_verify(
        session=session,
        actor=owner,
        org_id=org.id,
        domain_id=row.id,
        resolver=dns_server.resolver(),
    )
    session.commit()
    row = _reload(session, row)
    assert check.verified and row.verified_at is not None
    assert (row.recheck_failures, row.unverified_at, row.last_error) == (0, None, "")


def test_a_record_back_before_the_limit_resets_the_count_and_dns_silence_counts_nothing(
    session, owner_org, dns_server, monkeypatch
):
    _owner, org = owner_org
    monkeypatch.setenv("DOMAIN_RECHECK_FAILURES", "2")
    reset_settings_cache()
    start = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    clock.freeze(start)
    row = _verified(session, org, dns_server)
    record = domains.txt_record_name(row.domain)
    value = dns_server.records.pop(record)

    domains.domains_recheck_due(session=session, resolver=dns_server.resolver())
    assert _reload(session, row).recheck_failures == 1

    # DNS does not answer: no evidence either way, the count stays.
    silent = domains.dns.resolver.Resolver(configure=False)
    silent.nameservers, silent.port, silent.lifetime = ["127.0.0.1"], 9, 0.3
    clock.freeze(start + domains.RECHECK_INTERVAL + timedelta(minutes=1))
    result = domains.domains_recheck_due(session=session, resolver=silent)
    assert (result.checked, result.dns_unavailable) == (1, 1)
    row = _reload(session, row)
    assert row.verified_at is not None and row.recheck_failures == 1

    dns_server.records[record] = value  # published again before the limit
    clock.freeze(start + (domains.RECHECK_INTERVAL + timedelta(minutes=1)) * 2)
    result = domains.domains_recheck_due(session=session, resolver=dns_server.resolver())
    assert result.still_verified == 1
    row = _reload(session, row)
    assert (row.recheck_failures, row.last_error) == (0, "") and row.verified_at is not None


def test_a_domain_claimed_by_another_scheduler_is_checked_once(
    session, owner_org, dns_server, monkeypatch
):
    _owner, org = owner_org
    clock.freeze(datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    row = _verified(session, org, dns_server)
    dns_server.records.pop(domains.txt_record_name(row.domain))
    original = domains._recheck_candidates  # noqa: SLF001

    raced: list[int] = []

    def read_then_lose_the_race(db_session, cutoff, limit):
        seen = original(db_session, cutoff, limit)
        if raced:  # the other scheduler's own read
            return seen
        raced.append(1)
        db_session.rollback()  # SQLite: let the other process write
        # Another scheduler claims and checks the same domain between our read and our claim.
        with Session(db_session.get_bind(), expire_on_commit=False) as other_session:
            other = domains.domains_recheck_due(
                session=other_session, resolver=dns_server.resolver()
            )
        assert other.checked == 1
        return seen

    monkeypatch.setattr(domains, "_recheck_candidates", read_then_lose_the_race)
    result = domains.domains_recheck_due(session=session, resolver=dns_server.resolver())
    assert (result.checked, result.skipped) == (0, 1)
    assert _reload(session, row).recheck_failures == 1  # one failed check, counted once
