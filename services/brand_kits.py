"""Brand kits: the voice, audience and vocabulary every text output is written in.

An organization has one org-wide kit and optionally one per project. The kit that applies to a
run is the project's, else the organization's (`brand_kit_for`). It becomes the system context of
Assistant replies, Studio text runs and Competitor Intel ("us"); outputs record which kit was
used, and a reply that uses one of the kit's avoided terms is flagged (`brand_kit_avoided_terms`).

Owners, admins and editors edit kits (a project-scoped editor only its projects' kits); viewers
read. Transactions: `brand_kit_save` and `brand_kit_delete` work in the caller's unit of work.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field, fields

from sqlmodel import Session, col, select

from core.clock import utcnow
from models import BrandKit, User
from models.brand import ORG_WIDE_SCOPE
from services.audit import audit_record
from services.error_codes import Code
from services.errors import NotFound, ValidationFailed, error_with_code
from services.policy import Action, actor_for, require, target_for

MAX_NAME = 120
MAX_AUDIENCE = 1000
MAX_ITEMS = 25  # entries per list
MAX_ITEM = 300  # characters per entry

LIST_FIELDS = (
    "voice",
    "dos",
    "donts",
    "preferred_terms",
    "avoided_terms",
    "product_facts",
    "example_phrases",
)
LIST_LABELS = {
    "voice": "Voice",
    "dos": "Do's",
    "donts": "Don'ts",
    "preferred_terms": "Preferred terms",
    "avoided_terms": "Avoided terms",
    "product_facts": "Product facts",
    "example_phrases": "Example phrases",
}


@dataclass(frozen=True)
class BrandKitInput:
    """What a person submits; `brand_kit_clean` validates and normalises it."""

    name: str = ""
    audience: str = ""
    voice: list[str] = field(default_factory=list)
    dos: list[str] = field(default_factory=list)
    donts: list[str] = field(default_factory=list)
    preferred_terms: list[str] = field(default_factory=list)
    avoided_terms: list[str] = field(default_factory=list)
    product_facts: list[str] = field(default_factory=list)
    example_phrases: list[str] = field(default_factory=list)


def _scope(project_id: int | None) -> str:
    return ORG_WIDE_SCOPE if project_id is None else f"project:{project_id}"


def _visible_text(value: object) -> str:
    """Text without control or invisible format characters, whitespace collapsed."""
    text = "" if value is None else str(value)
    text = "".join(
        ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf")
    )
    return " ".join(text.split())


def split_lines(text: str) -> list[str]:
    """One entry per line (or comma-separated on one line), as the edit form submits them."""
    raw = str(text or "")
    parts = raw.splitlines() if "\n" in raw else raw.split(",")
    return [part for part in (_visible_text(p) for p in parts) if part]


def brand_kit_clean(data: BrandKitInput) -> BrandKitInput:
    """Validated copy of the input.

    Raises:
        ValidationFailed: naming the field, the limit and what to change.
    """
    name = _visible_text(data.name)
    if not name:
        raise ValidationFailed("Give the brand kit a name, e.g. 'Acme voice'.", field="name")
    if len(name) > MAX_NAME:
        raise ValidationFailed(
            f"The name is {len(name)} characters; the limit is {MAX_NAME}. Shorten it.",
            field="name",
        )
    audience = _visible_text(data.audience)
    if len(audience) > MAX_AUDIENCE:
        raise ValidationFailed(
            f"The audience is {len(audience)} characters; the limit is {MAX_AUDIENCE}. Shorten it.",
            field="audience",
        )
    cleaned: dict[str, list[str]] = {}
    for name_of_list in LIST_FIELDS:
        raw_items = getattr(data, name_of_list) or []
        if isinstance(raw_items, str):
            raw_items = split_lines(raw_items)
        items: list[str] = []
        for item in raw_items:
            text = _visible_text(item)
            if not text or text.casefold() in {i.casefold() for i in items}:
                continue
            if len(text) > MAX_ITEM:
                raise ValidationFailed(
                    f"An entry in {LIST_LABELS[name_of_list]} is {len(text)} characters; the "
                    f"limit is {MAX_ITEM}. Split or shorten it.",
                    field=name_of_list,
                )
            items.append(text)
        if len(items) > MAX_ITEMS:
            raise ValidationFailed(
                f"{LIST_LABELS[name_of_list]} has {len(items)} entries; the limit is "
                f"{MAX_ITEMS}. Keep the ones that matter most.",
                field=name_of_list,
            )
        cleaned[name_of_list] = items
    return BrandKitInput(name=name, audience=audience, **cleaned)


def brand_kit_get(
    *, session: Session, org_id: int, project_id: int | None = None
) -> BrandKit | None:
    """The kit stored for exactly this scope (the organization, or one project)."""
    return session.exec(
        select(BrandKit).where(BrandKit.org_id == org_id, BrandKit.scope == _scope(project_id))
    ).first()


def brand_kit_for(
    *, session: Session, org_id: int, project_id: int | None = None
) -> BrandKit | None:
    """The kit that applies to work in `project_id`: the project's, else the organization's."""
    scopes = {_scope(None), _scope(project_id)}
    kits = session.exec(
        select(BrandKit).where(BrandKit.org_id == org_id, col(BrandKit.scope).in_(scopes))
    ).all()
    by_scope = {kit.scope: kit for kit in kits}
    return by_scope.get(_scope(project_id)) or by_scope.get(_scope(None))


def brand_kits_list(*, session: Session, org_id: int) -> list[BrandKit]:
    """Every kit of the organization, the org-wide one first."""
    kits = session.exec(select(BrandKit).where(BrandKit.org_id == org_id)).all()
    return sorted(kits, key=lambda kit: (kit.scope != ORG_WIDE_SCOPE, kit.name.casefold()))


def brand_kit_save(
    *,
    session: Session,
    user: User,
    org_id: int,
    project_id: int | None,
    data: BrandKitInput,
) -> BrandKit:
    """Create or replace the kit of the organization or one project.

    Raises:
        PermissionDenied: a viewer, or a scoped editor on the org-wide kit.
        NotFound: the project is not in the organization or not in the editor's scope.
        ValidationFailed: see `brand_kit_clean`.
    """
    require(
        actor_for(session=session, user=user, org_id=org_id),
        Action.brand_kit_manage,
        target_for(session=session, org_id=org_id, project_id=project_id),
    )
    clean = brand_kit_clean(data)
    kit = brand_kit_get(session=session, org_id=org_id, project_id=project_id)
    created = kit is None
    if kit is None:
        kit = BrandKit(org_id=org_id, scope=_scope(project_id), project_id=project_id, name="")
    for item in fields(BrandKitInput):
        setattr(kit, item.name, getattr(clean, item.name))
    kit.updated_by_user_id = user.id
    kit.updated_at = utcnow()
    session.add(kit)
    session.flush()
    audit_record(
        session=session,
        action="brand_kit.created" if created else "brand_kit.updated",
        actor_user_id=user.id,
        org_id=org_id,
        target_type="brand_kit",
        target_id=kit.id or "",
        details={"project_id": project_id, "name": kit.name},
    )
    return kit


def brand_kit_delete(*, session: Session, user: User, org_id: int, project_id: int | None) -> None:
    """Remove the kit of a scope (a project then falls back to the organization's kit).

    Raises:
        NotFound: no kit for that scope.
    """
    require(
        actor_for(session=session, user=user, org_id=org_id),
        Action.brand_kit_manage,
        target_for(session=session, org_id=org_id, project_id=project_id),
    )
    kit = brand_kit_get(session=session, org_id=org_id, project_id=project_id)
    if kit is None:
        raise error_with_code(
            Code.not_found, "There is no brand kit here to remove. Reload the page.", base=NotFound
        )
    audit_record(
        session=session,
        action="brand_kit.deleted",
        actor_user_id=user.id,
        org_id=org_id,
        target_type="brand_kit",
        target_id=kit.id or "",
        details={"project_id": project_id, "name": kit.name},
    )
    session.delete(kit)
    session.flush()


def brand_kit_context(kit: BrandKit | None) -> str:
    """The kit as a system instruction for a model; "" without a kit."""
    if kit is None:
        return ""
    lines = [f"Write for the brand described by the brand kit '{kit.name}'."]
    if kit.voice:
        lines.append("Voice: " + ", ".join(kit.voice) + ".")
    if kit.audience:
        lines.append(f"Audience: {kit.audience}")
    sections = (
        ("Do", kit.dos),
        ("Don't", kit.donts),
        ("Prefer these terms", kit.preferred_terms),
        ("Never use these terms", kit.avoided_terms),
        ("Product facts (use only these facts)", kit.product_facts),
        ("Example phrases in the brand's voice", kit.example_phrases),
    )
    for title, items in sections:
        if items:
            lines.append(f"{title}:")
            lines.extend(f"- {item}" for item in items)
    return "\n".join(lines)


def brand_kit_avoided_terms(kit: BrandKit | None, text: str) -> list[str]:
    """The kit's avoided terms that `text` uses (whole words, any case), in the kit's order."""
    if kit is None or not text:
        return []
    found = []
    for term in kit.avoided_terms or []:
        pattern = r"(?<!\w)" + re.escape(term) + r"(?!\w)"
        if re.search(pattern, text, flags=re.IGNORECASE):
            found.append(term)
    return found


def brand_kit_label(kit: BrandKit | None) -> str:
    """How an output names the kit it used: "Acme voice (project kit)"."""
    if kit is None:
        return "No brand kit"
    where = "organization kit" if kit.scope == ORG_WIDE_SCOPE else "project kit"
    return f"{kit.name} ({where})"
