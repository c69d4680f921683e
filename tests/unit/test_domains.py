"""Verified domains: the DNS TXT check against a real DNS server on loopback (dnspython on both
sides: the app's resolver asks over UDP, the server below answers from a dict)."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from sqlmodel import select

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
