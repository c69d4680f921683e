"""Form tokens act once; old organization addresses lead to the new one for a while; a prompt
of invisible characters is no prompt."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from core import clock
from services import form_submissions as forms
from services import generations
from services import orgs as org_service
from services.errors import Conflict, ValidationFailed
from tests.factories import make_org, make_user


def test_a_token_records_its_first_result_and_only_its_submitter_gets_it(session):
    user = make_user(session, "a@example.com")
    other = make_user(session, "b@example.com")
    token = forms.form_token_new()
    assert forms.form_token_clean(token) == token
    assert (
        forms.form_submission_find(session=session, user_id=user.id, purpose="invite", token=token)
        is None
    )
    forms.form_submission_record(
        session=session, user_id=user.id, purpose="invite", token=token, result="pat@example.com"
    )
    assert (
        forms.form_submission_find(session=session, user_id=user.id, purpose="invite", token=token)
        == "pat@example.com"
    )
    # The same token on another form is another submit.
    assert (
        forms.form_submission_find(
            session=session, user_id=user.id, purpose="project_create", token=token
        )
        is None
    )
    with pytest.raises(Conflict) as refused:
        forms.form_submission_find(session=session, user_id=other.id, purpose="invite", token=token)
    assert refused.value.code == "form_already_used"


def test_a_second_record_of_one_token_is_refused_by_the_database(session):
    user = make_user(session, "a@example.com")
    token = forms.form_token_new()
    forms.form_submission_record(
        session=session, user_id=user.id, purpose="invite", token=token, result="x"
    )
    with pytest.raises(IntegrityError):
        forms.form_submission_record(
            session=session, user_id=user.id, purpose="invite", token=token, result="y"
        )


@pytest.mark.parametrize("value", [None, "", "short", "x" * 65, "bad token with spaces!!", 42])
def test_malformed_tokens_are_no_tokens(value):
    assert forms.form_token_clean(value) == ""


def test_records_older_than_two_days_are_purged(session):
    user = make_user(session, "a@example.com")
    clock.freeze(clock.utcnow() - timedelta(days=3))
    try:
        forms.form_submission_record(
            session=session, user_id=user.id, purpose="p", token=forms.form_token_new(), result=""
        )
    finally:
        clock.freeze(None)
    forms.form_submission_record(
        session=session, user_id=user.id, purpose="p", token=forms.form_token_new(), result=""
    )
    assert forms.form_submissions_purge(session=session) == 1


def test_an_old_address_leads_to_the_org_for_ninety_days_and_stays_its_own(session):
    owner = make_user(session, "o@example.com")
    org = make_org(session, owner, name="Acme")
    old = org.slug
    org_service.org_change_slug(session=session, actor=owner, org_id=org.id, slug="acme-new")
    assert org_service.org_by_old_address(session=session, slug=old).id == org.id
    # Taking the old address back is allowed for the same organization only.
    other_owner = make_user(session, "z@example.com")
    other = make_org(session, other_owner, name="Zed")
    with pytest.raises(Conflict):
        org_service.org_change_slug(session=session, actor=other_owner, org_id=other.id, slug=old)
    clock.freeze(clock.utcnow() + org_service.OLD_ADDRESS_REDIRECT_FOR + timedelta(minutes=1))
    try:
        assert org_service.org_by_old_address(session=session, slug=old) is None
    finally:
        clock.freeze(None)
    org_service.org_change_slug(session=session, actor=owner, org_id=org.id, slug=old)
    assert org.slug == old
    assert org_service.org_by_old_address(session=session, slug="acme-new").id == org.id


@pytest.mark.parametrize(
    "prompt", ["\u200b\u200b\u200b", " \ufeff\u2060 ", "\u200d\n\t", "\u00a0\u3000"]
)
def test_a_prompt_of_invisible_characters_is_refused_like_an_empty_one(prompt):
    assert generations.prompt_is_blank(prompt)
    with pytest.raises(ValidationFailed) as refused:
        generations._validate_prompt(prompt)
    assert refused.value.message.startswith("Write a prompt first")


def test_a_real_prompt_with_a_zero_width_joiner_is_kept():
    assert not generations.prompt_is_blank("launch \u200dpost")
    assert generations._validate_prompt(" hi\u200b ") == "hi\u200b"
