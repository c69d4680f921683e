"""Analytics test data: an organization with members, projects and real runs on given days.

Runs go through the real generation service (hold, local provider, settle or release, usage
event) with the clock frozen at the moment asked for; other surfaces' usage (assistant, API
chat) is written as the usage events those surfaces write.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from core import clock
from core.clock import utcnow
from models import ApiKey, Generation, Organization, Project, UsageEvent, User
from models.enums import OrgRole
from services import credits, generations, orgs
from services.providers.base import ProviderError, ProviderErrorCode
from services.providers.local import LocalProvider
from tests.factories import make_user


class _Failing(LocalProvider):
    def generate_text(self, **kwargs):
        raise ProviderError(ProviderErrorCode.provider_error)


class AnalyticsWorld:
    """owner, admin, editor and viewer of one Growth organization with projects Spring, Autumn."""

    def __init__(self, session: Session, *, slug: str = "acme", name: str = "Acme Marketing"):
        self.session = session
        self.owner = make_user(session, f"owner@{slug}.test", "Olivia Owner")
        self.org: Organization = orgs.org_create(
            session=session, owner=self.owner, name=name, slug=slug, plan_key="growth"
        )
        self.org.billing_profile_added_at = utcnow()
        session.add(self.org)
        self.spring: Project = orgs.project_create(
            session=session, actor=self.owner, org_id=self.org.id, name="Spring"
        )
        self.autumn: Project = orgs.project_create(
            session=session, actor=self.owner, org_id=self.org.id, name="Autumn"
        )
        self.admin = self._member(f"admin@{slug}.test", "Adam Admin", OrgRole.admin)
        self.editor = self._member(f"editor@{slug}.test", "Erin Editor", OrgRole.editor)
        self.viewer = self._member(f"viewer@{slug}.test", "Vic Viewer", OrgRole.viewer)
        self.key = ApiKey(
            org_id=self.org.id, name="CI key", prefix="cs_test", key_hash=f"hash-{slug}"
        )
        session.add(self.key)
        credits.credits_grant(
            session=session,
            org_id=self.org.id,
            amount_millicredits=100_000 * 1000,
            idempotency_key=f"analytics-grant-{slug}",
        )
        session.commit()

    def _member(self, email: str, name: str, role: OrgRole) -> User:
        user = make_user(self.session, email, name)
        orgs.membership_add(session=self.session, org_id=self.org.id, user_id=user.id, role=role)
        return user

    def run(
        self,
        at: datetime,
        *,
        user: User | None = None,
        project: Project | None = None,
        model_key: str = "local-text",
        fail: bool = False,
        finish: bool = True,
        api_key: bool = False,
        prompt: str = "Spring sale",
    ) -> Generation:
        """A run started and (unless `finish` is False) finished at `at`."""
        clock.freeze(at)
        try:
            generation = generations.generation_start(
                session=self.session,
                user=user or self.editor,
                org_id=self.org.id,
                model_key=model_key,
                prompt=prompt,
                project_id=(project or self.spring).id,
            )
            if api_key:
                generation.api_key_id = self.key.id
                self.session.add(generation)
            self.session.commit()
            if finish:
                generation = generations.generation_run(
                    session=self.session,
                    generation_id=generation.id,
                    provider=_Failing() if fail else None,
                )
            return generation
        finally:
            clock.freeze(None)

    def other_usage(
        self, at: datetime, *, source: str, millicredits: int = 500, user: User | None = None
    ) -> UsageEvent:
        """Usage another surface records without a generation (an assistant message, say)."""
        event = UsageEvent(
            org_id=self.org.id,
            user_id=(user or self.editor).id,
            source=source,
            model_key="local-text",
            modality="text",
            units=100,
            millicredits=millicredits,
            provider_units=100,
            outcome="succeeded",
            request_id=f"req_{source}_{at:%H%M%S}",
            occurred_at=at,
        )
        self.session.add(event)
        self.session.commit()
        return event


def world_on(db: Session | Engine, **kwargs) -> AnalyticsWorld:
    if isinstance(db, Engine):
        return AnalyticsWorld(Session(db, expire_on_commit=False), **kwargs)
    return AnalyticsWorld(db, **kwargs)
