"""API keys and the organization's API controls (Settings > API).

Invariants:

* A key is shown once, when it is created; the database keeps only its keyed hash
  (`core.crypto.hash_token`, verified under previous secrets too) and a short display prefix.
* A key never does more than its creator may: at creation each scope is checked against the
  creator's role (and the key's project) through the policy module, and on every request
  `api_key_authenticate` + `api_scope_require` check it again. A revoked key, an expired key, a
  creator who left the organization or lost the role, and an organization that turned the API
  off all take effect on the next request.
* Scopes map to policy actions: ``models:read`` -> ``org_view``; ``chat:write``,
  ``images:write``, ``videos:write`` -> ``tool_run``; ``usage:read`` -> ``analytics_view``.
* The models a key may use = the plan's models ∩ the organization's allowed list (empty =
  all) ∩ the modalities of the key's write scopes. The list fails closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from core import crypto
from core.clock import as_utc, utcnow
from models import AIModel, ApiKey, ApiSettings, Membership, Organization, Project, User
from services import models_registry as registry
from services import policy
from services.audit import audit_record
from services.error_codes import Code
from services.errors import DomainError, NotFound, ValidationFailed, error_with_code

KEY_PREFIX = "cs_"
PREFIX_CHARS = 11  # "cs_" + 8 characters, shown in lists and logs
MAX_KEY_NAME = 120
MAX_KEYS_PER_ORG = 100
MAX_RATE_LIMIT_PER_MINUTE = 10_000
MAX_DAILY_CAP_CREDITS = 10_000_000

SCOPE_MODELS_READ = "models:read"
SCOPE_CHAT_WRITE = "chat:write"
SCOPE_IMAGES_WRITE = "images:write"
SCOPE_VIDEOS_WRITE = "videos:write"
SCOPE_USAGE_READ = "usage:read"
SCOPES: tuple[str, ...] = (
    SCOPE_MODELS_READ,
    SCOPE_CHAT_WRITE,
    SCOPE_IMAGES_WRITE,
    SCOPE_VIDEOS_WRITE,
    SCOPE_USAGE_READ,
)
SCOPE_LABELS = {
    SCOPE_MODELS_READ: "List models",
    SCOPE_CHAT_WRITE: "Chat completions",
    SCOPE_IMAGES_WRITE: "Generate images",
    SCOPE_VIDEOS_WRITE: "Generate videos",
    SCOPE_USAGE_READ: "Read usage",
}
SCOPE_ACTIONS: dict[str, policy.Action] = {
    SCOPE_MODELS_READ: policy.Action.org_view,
    SCOPE_CHAT_WRITE: policy.Action.tool_run,
    SCOPE_IMAGES_WRITE: policy.Action.tool_run,
    SCOPE_VIDEOS_WRITE: policy.Action.tool_run,
    SCOPE_USAGE_READ: policy.Action.analytics_view,
}
SCOPE_MODALITY = {
    SCOPE_CHAT_WRITE: "text",
    SCOPE_IMAGES_WRITE: "image",
    SCOPE_VIDEOS_WRITE: "video",
}


# --- read models ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiKeyView:
    """A key as Settings > API lists it (never its hash)."""

    id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    project_id: int | None
    project_name: str
    created_by: str
    created_at: datetime | None
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    daily_cap_credits: int | None
    rate_limit_per_minute: int | None

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and as_utc(self.expires_at) <= utcnow():
            return "expired"
        return "active"


@dataclass(frozen=True)
class CreatedKey:
    """The new key and its secret, which is shown once and never stored."""

    key: ApiKey
    secret: str


@dataclass(frozen=True)
class ApiControls:
    api_enabled: bool
    allowed_model_keys: tuple[str, ...]  # empty = every model the plan allows


@dataclass(frozen=True)
class ApiPrincipal:
    """Who calls the API: the key, its organization and its creator (re-read per request)."""

    key_id: int
    key_prefix: str
    org_id: int
    org_slug: str
    user: User
    scopes: frozenset[str]
    project_id: int | None
    daily_cap_credits: int | None
    rate_limit_per_minute: int | None
    controls: ApiControls


# --- helpers ----------------------------------------------------------------------------------


def _require_manage(session: Session, user: User, org_id: int) -> policy.Actor:
    actor = policy.actor_for(session=session, user=user, org_id=org_id)
    policy.require(
        actor, policy.Action.api_keys_manage, policy.target_for(session=session, org_id=org_id)
    )
    return actor


def _clean_scopes(scopes: Any) -> list[str]:
    if not isinstance(scopes, list | tuple | set | frozenset) or not scopes:
        raise ValidationFailed(
            "Choose at least one scope: what the key may do (for example Chat completions).",
            field="scopes",
        )
    clean = []
    for scope in scopes:
        if not isinstance(scope, str) or scope not in SCOPES:
            raise ValidationFailed(
                f"Unknown scope {str(scope)[:40]!r}; scopes are {', '.join(SCOPES)}.",
                field="scopes",
            )
        if scope not in clean:
            clean.append(scope)
    return [scope for scope in SCOPES if scope in clean]


def _optional_whole(value: Any, *, field: str, label: str, maximum: int) -> int | None:
    if value is None or value == "":
        return None
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if number is None or not 1 <= number <= maximum:
        raise ValidationFailed(
            f"{label} must be a whole number from 1 to {maximum:,}, or empty for none.",
            field=field,
        )
    return number


def scope_check_for_user(
    *, session: Session, user: User, org_id: int, scope: str, project_id: int | None
) -> policy.Decision:
    """May `user` do what `scope` allows, in the org (and project)? A policy decision."""
    actor = policy.actor_for(session=session, user=user, org_id=org_id)
    target = policy.target_for(session=session, org_id=org_id, project_id=project_id)
    action = SCOPE_ACTIONS[scope]
    if action == policy.Action.tool_run:
        # Whether the subscription runs now is a blocker of each run, not of the key.
        target = policy.Target(org_id=target.org_id, project_id=target.project_id)
    return policy.can(actor, action, target)


# --- keys -------------------------------------------------------------------------------------


def api_key_create(
    *,
    session: Session,
    actor_user: User,
    org_id: int,
    name: str,
    scopes: Any,
    project_id: int | None = None,
    expires_at: datetime | None = None,
    daily_cap_credits: Any = None,
    rate_limit_per_minute: Any = None,
) -> CreatedKey:
    """Create a key for the org; its secret is in the result, once. Flushes; caller commits.

    Raises:
        PermissionDenied: the creator may not manage keys, or may not do what a scope allows.
        NotFound: the project is not in the org (or outside the creator's access).
        ValidationFailed: name, scopes, expiry, cap or rate limit not valid.
    """
    _require_manage(session, actor_user, org_id)
    name = (name or "").strip() if isinstance(name, str) else ""
    if not name:
        raise ValidationFailed("Give the key a name, for example where it is used.", field="name")
    if len(name) > MAX_KEY_NAME:
        raise ValidationFailed(
            f"The name is {len(name)} characters; the limit is {MAX_KEY_NAME}.", field="name"
        )
    clean_scopes = _clean_scopes(scopes)
    if project_id is not None:
        project = session.get(Project, project_id)
        if project is None or project.org_id != org_id or project.archived_at is not None:
            raise error_with_code(
                Code.project_not_found,
                "This project does not exist or is archived. Pick another project.",
                base=NotFound,
            )
    if expires_at is not None and as_utc(expires_at) <= utcnow():
        raise ValidationFailed(
            "The expiry date is in the past. Pick a later date.", field="expires"
        )
    cap = _optional_whole(
        daily_cap_credits,
        field="daily_cap",
        label="The daily credit cap",
        maximum=MAX_DAILY_CAP_CREDITS,
    )
    rate = _optional_whole(
        rate_limit_per_minute,
        field="rate_limit",
        label="The rate limit",
        maximum=MAX_RATE_LIMIT_PER_MINUTE,
    )
    for scope in clean_scopes:
        decision = scope_check_for_user(
            session=session, user=actor_user, org_id=org_id, scope=scope, project_id=project_id
        )
        if not decision:
            raise error_with_code(
                Code.role_forbidden,
                f"You cannot give a key the scope {scope} ({SCOPE_LABELS[scope]}): a key can "
                f"never do more than the person who creates it. {decision.message}",
            )
    active = session.exec(
        select(ApiKey.id).where(ApiKey.org_id == org_id, col(ApiKey.revoked_at).is_(None))
    ).all()
    if len(active) >= MAX_KEYS_PER_ORG:
        raise ValidationFailed(
            f"This organization has {len(active)} active keys, the most allowed. Revoke keys "
            "that are no longer used, then create this one.",
            field="name",
        )
    secret = KEY_PREFIX + crypto.new_token(32)
    key = ApiKey(
        org_id=org_id,
        name=name,
        prefix=secret[:PREFIX_CHARS],
        key_hash=crypto.hash_token(secret),
        scopes=clean_scopes,
        created_by_user_id=actor_user.id,
        created_at=utcnow(),
        project_id=project_id,
        expires_at=as_utc(expires_at) if expires_at is not None else None,
        daily_cap_credits=cap,
        rate_limit_per_minute=rate,
    )
    session.add(key)
    session.flush()
    audit_record(
        session=session,
        action="api_key.created",
        actor_user_id=actor_user.id,
        org_id=org_id,
        target_type="api_key",
        target_id=key.id,
        details={
            "name": name,
            "prefix": key.prefix,
            "scopes": clean_scopes,
            "project_id": project_id,
        },
    )
    return CreatedKey(key=key, secret=secret)


def api_key_revoke(*, session: Session, actor_user: User, org_id: int, key_id: int) -> ApiKey:
    """Revoke a key (a second revoke changes nothing). Flushes; caller commits.

    Raises:
        PermissionDenied: not an owner/admin.
        NotFound: no such key in this org.
    """
    _require_manage(session, actor_user, org_id)
    key = session.get(ApiKey, key_id)
    if key is None or key.org_id != org_id:
        raise NotFound("This API key does not exist. Reload the page.")
    result = session.execute(
        update(ApiKey)
        .where(col(ApiKey.id) == key_id, col(ApiKey.revoked_at).is_(None))
        .values(revoked_at=utcnow(), revoked_by_user_id=actor_user.id)
    )
    if result.rowcount:
        audit_record(
            session=session,
            action="api_key.revoked",
            actor_user_id=actor_user.id,
            org_id=org_id,
            target_type="api_key",
            target_id=key.id,
            details={"name": key.name, "prefix": key.prefix},
        )
    session.refresh(key)
    return key


def api_keys_list(*, session: Session, actor_user: User, org_id: int) -> list[ApiKeyView]:
    """The org's keys, newest first (owner/admin)."""
    _require_manage(session, actor_user, org_id)
    keys = list(
        session.exec(
            select(ApiKey)
            .where(ApiKey.org_id == org_id)
            .order_by(col(ApiKey.created_at).desc(), col(ApiKey.id).desc())
        )
    )
    user_ids = {k.created_by_user_id for k in keys if k.created_by_user_id}
    users = (
        {
            u.id: (u.name or u.email)
            for u in session.exec(select(User).where(col(User.id).in_(user_ids)))
        }
        if user_ids
        else {}
    )
    project_ids = {k.project_id for k in keys if k.project_id}
    projects = (
        {
            p.id: p.name
            for p in session.exec(select(Project).where(col(Project.id).in_(project_ids)))
        }
        if project_ids
        else {}
    )
    return [
        ApiKeyView(
            id=k.id,
            name=k.name,
            prefix=k.prefix,
            scopes=tuple(k.scopes or ()),
            project_id=k.project_id,
            project_name=projects.get(k.project_id, "") if k.project_id else "",
            created_by=users.get(k.created_by_user_id, "A former member")
            if k.created_by_user_id
            else "A former member",
            created_at=as_utc(k.created_at),
            last_used_at=as_utc(k.last_used_at),
            expires_at=as_utc(k.expires_at),
            revoked_at=as_utc(k.revoked_at),
            daily_cap_credits=k.daily_cap_credits,
            rate_limit_per_minute=k.rate_limit_per_minute,
        )
        for k in keys
    ]


# --- API controls -----------------------------------------------------------------------------


def api_controls_get(*, session: Session, org_id: int) -> ApiControls:
    row = session.exec(select(ApiSettings).where(ApiSettings.org_id == org_id)).first()
    if row is None:
        return ApiControls(api_enabled=True, allowed_model_keys=())
    return ApiControls(
        api_enabled=row.api_enabled, allowed_model_keys=tuple(row.allowed_model_keys or ())
    )


def api_controls_update(
    *, session: Session, actor_user: User, org_id: int, api_enabled: bool, allowed_model_keys: Any
) -> ApiControls:
    """Turn the API on/off and set the models it may use (empty = all the plan allows).

    Flushes; caller commits.

    Raises:
        PermissionDenied: not an owner/admin.
        ValidationFailed: an unknown model key.
    """
    _require_manage(session, actor_user, org_id)
    if not isinstance(allowed_model_keys, list | tuple):
        raise ValidationFailed("Allowed models must be a list of model ids.", field="models")
    known = set(session.exec(select(AIModel.key)).all())
    clean: list[str] = []
    for key in allowed_model_keys:
        if not isinstance(key, str) or key not in known:
            raise ValidationFailed(
                f"There is no model called {str(key)[:64]!r}. Reload the page.", field="models"
            )
        if key not in clean:
            clean.append(key)
    row = session.exec(select(ApiSettings).where(ApiSettings.org_id == org_id)).first()
    if row is None:
        row = ApiSettings(org_id=org_id)
    row.api_enabled = bool(api_enabled)
    row.allowed_model_keys = sorted(clean)
    row.updated_by_user_id = actor_user.id
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    audit_record(
        session=session,
        action="api_controls.updated",
        actor_user_id=actor_user.id,
        org_id=org_id,
        target_type="api_settings",
        target_id=row.id,
        details={"api_enabled": row.api_enabled, "allowed_model_keys": row.allowed_model_keys},
    )
    return ApiControls(
        api_enabled=row.api_enabled, allowed_model_keys=tuple(row.allowed_model_keys)
    )


# --- authentication ---------------------------------------------------------------------------


def _invalid_key(message: str = "") -> DomainError:
    return error_with_code(
        Code.invalid_api_key,
        message
        or "The API key is not valid. Send it as 'Authorization: Bearer <key>'; create a key "
        "in Settings > API if you do not have one.",
    )


def api_key_authenticate(*, session: Session, secret: str | None) -> ApiPrincipal:
    """The caller of a request, from its bearer secret; checked afresh on every request.

    Commits the key's `last_used_at` (at most once a minute).

    Raises:
        DomainError: ``invalid_api_key`` (missing, unknown, revoked, creator gone),
            ``key_expired``, ``api_disabled``.
    """
    if not isinstance(secret, str) or not secret.startswith(KEY_PREFIX) or len(secret) > 200:
        raise _invalid_key()
    hashes = crypto.token_hash_candidates(secret)
    key = session.exec(select(ApiKey).where(col(ApiKey.key_hash).in_(hashes))).first()
    if key is None:
        raise _invalid_key()
    if key.revoked_at is not None:
        raise _invalid_key(
            f"The API key {key.prefix}... was revoked. Create a new key in Settings > API."
        )
    now = utcnow()
    if key.expires_at is not None and as_utc(key.expires_at) <= now:
        raise error_with_code(
            Code.key_expired,
            f"The API key {key.prefix}... expired on {as_utc(key.expires_at):%Y-%m-%d %H:%M} UTC. "
            "Create a new key in Settings > API.",
        )
    org = session.get(Organization, key.org_id)
    user = session.get(User, key.created_by_user_id) if key.created_by_user_id else None
    member = (
        session.exec(
            select(Membership.id).where(
                Membership.org_id == key.org_id, Membership.user_id == user.id
            )
        ).first()
        if user is not None
        else None
    )
    if org is None or org.deleted_at is not None or user is None or member is None:
        raise _invalid_key(
            f"The API key {key.prefix}... no longer works: the person who created it is no longer "
            "a member of the organization. Ask an owner or admin for a new key."
        )
    controls = api_controls_get(session=session, org_id=org.id)
    if not controls.api_enabled:
        raise error_with_code(
            Code.api_disabled,
            f"The API is turned off for {org.name}. An owner or admin can turn it on in "
            "Settings > API.",
        )
    if key.last_used_at is None or (now - as_utc(key.last_used_at)).total_seconds() >= 60:
        session.execute(update(ApiKey).where(col(ApiKey.id) == key.id).values(last_used_at=now))
        session.commit()
    return ApiPrincipal(
        key_id=key.id,
        key_prefix=key.prefix,
        org_id=org.id,
        org_slug=org.slug,
        user=user,
        scopes=frozenset(key.scopes or ()),
        project_id=key.project_id,
        daily_cap_credits=key.daily_cap_credits,
        rate_limit_per_minute=key.rate_limit_per_minute,
        controls=controls,
    )


def api_scope_require(*, session: Session, principal: ApiPrincipal, scope: str) -> None:
    """The key has `scope`, and its creator may still do what it allows.

    Raises:
        DomainError: ``scope_missing``, or the policy's refusal for the creator
            (``role_forbidden``, ``project_not_found``...).
    """
    if scope not in principal.scopes:
        have = ", ".join(sorted(principal.scopes)) or "none"
        raise error_with_code(
            Code.scope_missing,
            f"This API key lacks the scope {scope} needed here (it has: {have}). Create a key "
            f"with {scope} in Settings > API.",
            scope=scope,
        )
    decision = scope_check_for_user(
        session=session,
        user=principal.user,
        org_id=principal.org_id,
        scope=scope,
        project_id=principal.project_id,
    )
    if not decision:
        raise error_with_code(
            decision.code,
            "This API key can no longer do this, because the person who created it may not: "
            + decision.message,
        )


def api_models_for_key(
    *, session: Session, principal: ApiPrincipal
) -> list[tuple[registry.ModelAvailability, str]]:
    """Every registry model with why the key may not use it ("" = usable and listed).

    Fails closed: locked, disabled or unconfigured models, models outside the org's allowed
    list, and modalities without a write scope on the key all carry a reason.
    """
    modalities = {SCOPE_MODALITY[s] for s in principal.scopes if s in SCOPE_MODALITY}
    allowed = set(principal.controls.allowed_model_keys)
    result = []
    for item in registry.models_for_org(session=session, org_id=principal.org_id):
        reason = ""
        if not item.usable:
            reason = item.reason
        elif allowed and item.key not in allowed:
            reason = (
                f"{item.display_name} is not among the models this organization allows on the "
                "API. An owner or admin can allow it in Settings > API."
            )
        elif item.modality not in modalities:
            needed = next(s for s, m in SCOPE_MODALITY.items() if m == item.modality)
            reason = (
                f"{item.display_name} is a {item.modality} model and this API key lacks the "
                f"scope {needed}."
            )
        result.append((item, reason))
    return result
