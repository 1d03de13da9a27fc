"""visible_to / editable_by: each department sees its own records and what is shared."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import Http404

from config.org.models import AuditLog, Role
from config.org.selectors import get_visible_or_404
from config.org.services import share_grant, share_revoke
from customers.models import Segment
from tests.factories import SegmentFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_department_sees_only_its_own_segments(crm, sales, crm_editor, sales_editor):
    own = SegmentFactory(owner_department=crm)
    other = SegmentFactory(owner_department=sales)

    assert list(Segment.objects.visible_to(crm_editor)) == [own]
    assert list(Segment.objects.visible_to(sales_editor)) == [other]


def test_sharing_makes_a_record_visible_without_duplicates(crm, sales, crm_editor, sales_editor):
    segment = SegmentFactory(owner_department=crm)

    share_grant(obj=segment, department=sales, can_edit=False, by=crm_editor)

    assert list(Segment.objects.visible_to(sales_editor)) == [segment]
    assert not Segment.objects.editable_by(sales_editor).exists()
    assert AuditLog.objects.filter(action="share.grant", target_id=str(segment.pk)).exists()


def test_edit_share_lets_editors_of_the_other_department_change_it(
    crm, sales, crm_editor, sales_editor
):
    segment = SegmentFactory(owner_department=crm)
    share_grant(obj=segment, department=sales, can_edit=True, by=crm_editor)

    assert list(Segment.objects.editable_by(sales_editor)) == [segment]

    share_revoke(obj=segment, department=sales, by=crm_editor)
    assert not Segment.objects.visible_to(sales_editor).exists()


def test_viewers_cannot_edit_their_own_departments_records(crm, crm_viewer):
    SegmentFactory(owner_department=crm)

    assert Segment.objects.visible_to(crm_viewer).count() == 1
    assert not Segment.objects.editable_by(crm_viewer).exists()


def test_user_in_several_departments_sees_both(crm, sales):
    both = UserFactory(department=crm, department__role=Role.VIEWER)
    both.memberships.create(department=sales, role=Role.VIEWER)
    SegmentFactory(owner_department=crm)
    SegmentFactory(owner_department=sales)

    assert Segment.objects.visible_to(both).count() == 2


def test_superuser_sees_everything_and_anonymous_nothing(crm, superuser):
    SegmentFactory(owner_department=crm)

    assert Segment.objects.visible_to(superuser).count() == 1
    assert not Segment.objects.visible_to(AnonymousUser()).exists()


def test_scoped_fetch_answers_404_for_other_departments_and_missing_ids(crm, sales, sales_editor):
    segment = SegmentFactory(owner_department=crm)

    with pytest.raises(Http404):
        get_visible_or_404(Segment.objects, sales_editor, pk=segment.pk)
    with pytest.raises(Http404):
        get_visible_or_404(Segment.objects, sales_editor, pk=segment.pk + 1000)
