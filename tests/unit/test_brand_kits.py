"""Brand kits: who edits them, which one applies, what reaches the model, avoided terms."""

import pytest

from models.enums import OrgRole
from services.brand_kits import (
    BrandKitInput,
    brand_kit_avoided_terms,
    brand_kit_context,
    brand_kit_delete,
    brand_kit_for,
    brand_kit_label,
    brand_kit_save,
)
from services.errors import NotFound, PermissionDenied, ValidationFailed
from tests.factories import add_member, make_org, make_projects, make_user

KIT = BrandKitInput(
    name="Acme voice",
    audience="Marketing leads at mid-size retailers",
    voice=["confident", "warm"],
    dos=["Lead with the customer's outcome"],
    donts=["Promise results we cannot measure"],
    preferred_terms=["workspace"],
    avoided_terms=["synergy", "best-in-class"],
    product_facts=["Acme ships in 40 countries"],
    example_phrases=["Less busywork, more launches."],
)


@pytest.fixture
def team(session):
    owner = make_user(session, "owner@example.com")
    org = make_org(session, owner, plan_key="starter")
    projects = make_projects(session, org, 2)
    editor = add_member(session, org, "editor@example.com", OrgRole.editor)
    viewer = add_member(session, org, "viewer@example.com", OrgRole.viewer)
    session.commit()
    return owner, org, projects, editor, viewer


def test_project_kit_wins_over_the_organization_kit(session, team):
    owner, org, projects, _, _ = team
    brand_kit_save(session=session, user=owner, org_id=org.id, project_id=None, data=KIT)
    project_kit = BrandKitInput(name="Launch voice", voice=["playful"])
    brand_kit_save(
        session=session, user=owner, org_id=org.id, project_id=projects[0].id, data=project_kit
    )
    assert brand_kit_for(session=session, org_id=org.id, project_id=projects[0].id).name == (
        "Launch voice"
    )
    assert brand_kit_for(session=session, org_id=org.id, project_id=projects[1].id).name == (
        "Acme voice"
    )
    assert brand_kit_label(brand_kit_for(session=session, org_id=org.id)) == (
        "Acme voice (organization kit)"
    )
    brand_kit_delete(session=session, user=owner, org_id=org.id, project_id=projects[0].id)
    assert brand_kit_for(session=session, org_id=org.id, project_id=projects[0].id).name == (
        "Acme voice"
    )


def test_saving_again_replaces_the_kit_of_that_scope(session, team):
    owner, org, _, editor, _ = team
    brand_kit_save(session=session, user=owner, org_id=org.id, project_id=None, data=KIT)
    brand_kit_save(
        session=session,
        user=editor,
        org_id=org.id,
        project_id=None,
        data=BrandKitInput(name="Acme voice v2", avoided_terms="synergy, leverage"),
    )
    kit = brand_kit_for(session=session, org_id=org.id)
    assert kit.name == "Acme voice v2" and kit.avoided_terms == ["synergy", "leverage"]
    assert kit.voice == []


def test_viewer_reads_but_cannot_edit(session, team):
    _, org, _, _, viewer = team
    with pytest.raises(PermissionDenied) as refused:
        brand_kit_save(session=session, user=viewer, org_id=org.id, project_id=None, data=KIT)
    assert "cannot change them" in refused.value.message


def test_scoped_editor_edits_only_approved_projects(session, team):
    _, org, projects, _, _ = team
    scoped = add_member(session, org, "scoped@example.com", OrgRole.editor, [projects[0].id])
    brand_kit_save(session=session, user=scoped, org_id=org.id, project_id=projects[0].id, data=KIT)
    with pytest.raises(NotFound):
        brand_kit_save(
            session=session, user=scoped, org_id=org.id, project_id=projects[1].id, data=KIT
        )
    with pytest.raises(PermissionDenied):
        brand_kit_save(session=session, user=scoped, org_id=org.id, project_id=None, data=KIT)


def test_invalid_input_names_the_field_and_limit(session, team):
    owner, org, _, _, _ = team
    with pytest.raises(ValidationFailed) as no_name:
        brand_kit_save(
            session=session,
            user=owner,
            org_id=org.id,
            project_id=None,
            data=BrandKitInput(name="\u200b \u200b"),
        )
    assert no_name.value.field == "name"
    with pytest.raises(ValidationFailed) as too_long:
        brand_kit_save(
            session=session,
            user=owner,
            org_id=org.id,
            project_id=None,
            data=BrandKitInput(name="Kit", dos=["x" * 301]),
        )
    assert too_long.value.field == "dos" and "limit is 300" in too_long.value.message


def test_context_carries_every_part_of_the_kit(session, team):
    owner, org, _, _, _ = team
    kit = brand_kit_save(session=session, user=owner, org_id=org.id, project_id=None, data=KIT)
    context = brand_kit_context(kit)
    for expected in (
        "Acme voice",
        "confident, warm",
        "mid-size retailers",
        "Lead with the customer's outcome",
        "Promise results we cannot measure",
        "workspace",
        "synergy",
        "40 countries",
        "Less busywork",
    ):
        assert expected in context
    assert brand_kit_context(None) == ""


def test_avoided_terms_are_flagged_as_whole_words_in_any_case(session, team):
    owner, org, _, _, _ = team
    kit = brand_kit_save(session=session, user=owner, org_id=org.id, project_id=None, data=KIT)
    assert brand_kit_avoided_terms(kit, "Real SYNERGY, truly Best-in-class.") == [
        "synergy",
        "best-in-class",
    ]
    assert brand_kit_avoided_terms(kit, "Synergystic is not a word we flag") == []
    assert brand_kit_avoided_terms(None, "synergy") == []
