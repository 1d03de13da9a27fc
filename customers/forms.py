"""Forms of circle ① shared by several pages."""

from __future__ import annotations

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from customers.models import Customer, LifecycleStage
from customers.selectors import can_view_pii, customer_list


class CustomerSearchForm(forms.Form):
    """The one search box (identifiers for everyone, names with view_pii) and the stage filter.

    The customer list and its export read the same parameters, so they always agree.
    """

    q = forms.CharField(required=False, strip=True, max_length=100)
    stage = forms.ChoiceField(
        required=False,
        choices=[("", _("All stages")), *LifecycleStage.choices],
        label=_("Lifecycle stage"),
    )

    def customers(self, user) -> QuerySet[Customer]:
        """The matching customers (call after ``is_valid``); names only for ``view_pii``."""
        return customer_list(
            q=self.cleaned_data["q"],
            stage=self.cleaned_data["stage"],
            search_names=can_view_pii(user),
        )
