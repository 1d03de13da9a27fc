"""One cell of the RFM grid: its customers (masked as in the customer list) and
"save as segment", which creates a dynamic segment whose rules reproduce the cell."""

from __future__ import annotations

from django import forms
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from config.org.models import Department, Role
from config.org.selectors import departments_where, get_visible_or_404
from config.org.services import audit_record
from customers.models import Segment
from customers.selectors import can_view_pii
from reports.selectors.rfm import SCORES, rfm_cell_customers
from reports.services import rfm_cell_segment_create

PAGE_SIZE = 50


class SaveCellForm(forms.Form):
    """The owner of the new segment: one of the departments where the user is an editor."""

    owner_department = forms.ModelChoiceField(
        label=_("Owner department"), queryset=Department.objects.none()
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        choices = departments_where(user, Role.EDITOR).order_by("name")
        self.fields["owner_department"].queryset = choices
        if len(choices) == 1:
            self.fields["owner_department"].initial = choices[0].pk


def rfm_cell(request: HttpRequest, recency: int, frequency: int) -> HttpResponse:
    """GET: the cell's customers, paginated. POST: save the cell as a segment (editors)."""
    if recency not in SCORES or frequency not in SCORES:
        raise Http404
    segment = None
    if request.GET.get("segment"):
        if not request.GET["segment"].isdigit():
            raise Http404
        segment = get_visible_or_404(Segment.objects.all(), request.user, pk=request.GET["segment"])
    segment_id = segment.pk if segment else None
    user = request.user
    can_save = user.is_superuser or bool(user.department_ids_with_role(Role.EDITOR))
    status = 200
    form = SaveCellForm(user=user)
    if request.method == "POST":
        if not can_save:
            raise PermissionDenied
        form = SaveCellForm(request.POST, user=user)
        if form.is_valid():
            created = rfm_cell_segment_create(
                recency=recency,
                frequency=frequency,
                within=segment,
                owner_department=form.cleaned_data["owner_department"],
                by=user,
            )
            return redirect("customers:segment_detail", pk=created.pk)
        status = 400
    customers = rfm_cell_customers(recency=recency, frequency=frequency, segment_id=segment_id)
    page_obj = Paginator(customers, PAGE_SIZE).get_page(request.GET.get("page"))
    show_names = can_view_pii(user)
    if show_names and page_obj.object_list:
        # Names of many people at once: an unmasked view like the profile page's.
        audit_record(
            actor=user,
            action="rfm_cell.view_pii",
            detail={
                "recency": recency,
                "frequency": frequency,
                "segment": segment_id,
                "page": page_obj.number,
                "customers": [customer.pk for customer in page_obj.object_list],
            },
            ip_address=request.META.get("REMOTE_ADDR"),
        )
    return render(
        request,
        "reports/rfm_cell.html",
        {
            "active_circle": "strategy",
            "recency": recency,
            "frequency": frequency,
            "segment": segment,
            "page_obj": page_obj,
            "filters": urlencode({"segment": segment_id}) if segment_id else "",
            "show_names": show_names,
            "can_save": can_save,
            "form": form,
        },
        status=status,
    )
