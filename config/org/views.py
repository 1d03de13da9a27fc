"""Settings pages of the organisation: the API tokens of integrations.

Managers of a department (and the administrator) see, create and revoke its tokens; other
staff get 403, because a token's name and source already tell how data enters the
company. A new token's secret is shown once, in the response to the form that created it,
and never again (only its digest is stored).
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods, require_POST

from config.org.models import ApiToken
from config.org.tokens import (
    api_token_create,
    api_token_revoke,
    api_tokens_manageable_by,
    token_departments_managed_by,
)


class ApiTokenForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    department = forms.ModelChoiceField(label=_("Department"), queryset=None)
    source = forms.SlugField(
        label=_("Source"),
        max_length=50,
        help_text=_("Name of the sending system, e.g. web-shop; event IDs are unique per source."),
    )

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["department"].queryset = token_departments_managed_by(user)


def _require_manager(user):
    departments = token_departments_managed_by(user)
    if not departments.exists():
        raise PermissionDenied
    return departments


def _page(request, *, form, secret: str = "", created=None, status: int = 200) -> HttpResponse:
    context = {
        "tokens": api_tokens_manageable_by(request.user),
        "form": form,
        "secret": secret,
        "created": created,
    }
    template = "org/tokens.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#token-list"
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ("HX-Request",))
    return response


@require_http_methods(["GET", "POST"])
def token_list(request):
    """The tokens of the departments the user manages; POST creates one."""
    _require_manager(request.user)
    if request.method == "GET":
        return _page(request, form=ApiTokenForm(user=request.user))
    form = ApiTokenForm(request.POST, user=request.user)
    if not form.is_valid():
        return _page(request, form=form, status=400)
    try:
        token, secret = api_token_create(
            name=form.cleaned_data["name"],
            department=form.cleaned_data["department"],
            source=form.cleaned_data["source"],
            by=request.user,
        )
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            for message in messages:
                form.add_error(field if field in form.fields else None, message)
        return _page(request, form=form, status=400)
    # Rendered, not redirected: the secret must never reach a URL, a log or a second page.
    response = _page(request, form=ApiTokenForm(user=request.user), secret=secret, created=token)
    response["Cache-Control"] = "no-store"
    return response


@require_POST
def token_revoke(request, pk: int):
    """Revoke a token of a department the user manages (404 for any other token)."""
    _require_manager(request.user)
    try:
        token = api_tokens_manageable_by(request.user).get(pk=pk)
    except ApiToken.DoesNotExist as exc:
        raise Http404 from exc
    api_token_revoke(token=token, by=request.user)
    return _page(request, form=ApiTokenForm(user=request.user))


urlpatterns = [
    path("tokens/", token_list, name="tokens"),
    path("tokens/<int:pk>/revoke/", token_revoke, name="token_revoke"),
]
