"""Circle ③ pages: the campaign list, create/edit with steps and A/B content, preview and
test send, approval and lifecycle buttons, results, and the direct-mail export.

Reads are scoped with ``visible_to`` (another department's campaign is a 404); writes ask
``campaign_can_edit`` / ``campaign_can_approve`` first (403) and then the services in
journeys.services, which decide and raise ValidationError naming the field.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config.org.models import Role
from config.org.selectors import departments_where, get_visible_or_404, has_role_anywhere
from config.org.services import audit_record
from config.spreadsheets import csv_bytes_stream
from customers.models import Customer
from customers.selectors import can_view_pii, customer_list, mask_text
from journeys import presets, selectors, services
from journeys.channels import direct_mail_csv
from journeys.charts import funnel_figure
from journeys.content import preview_message, send_test
from journeys.forms import (
    CampaignFilterForm,
    CampaignForm,
    PreviewForm,
    StepForm,
    add_service_errors,
)
from journeys.models import Campaign, Variant
from journeys.scheduling import next_run_after
from journeys.services import (
    CAMPAIGN_ACTIONS,
    campaign_can_approve,
    campaign_can_edit,
    campaign_create,
    campaign_transition,
    campaign_update,
)

PAGE_SIZE = 50
ACTION_LABELS = {
    "request_approval": _("Request approval"),
    "approve": _("Approve"),
    "reject": _("Reject"),
    "pause": _("Pause"),
    "resume": _("Resume"),
    "complete": _("Complete"),
}
ACTION_DONE = {
    "request_approval": _("Approval requested: the managers of the department were asked."),
    "approve": _("Approved."),
    "reject": _("Sent back to its authors."),
    "pause": _("Paused."),
    "resume": _("Resumed."),
    "complete": _("Completed."),
}


def _campaign_for(user, pk: int) -> Campaign:
    """One campaign the user may see (another department's answers 404, like a missing one)."""
    return get_visible_or_404(
        Campaign.objects.select_related(
            "owner_department", "segment", "journey_stage__journey", "approved_by", "created_by"
        ),
        user,
        pk=pk,
    )


def _require_edit(user, campaign: Campaign) -> None:
    if not campaign_can_edit(user, campaign):
        raise PermissionDenied


def _htmx_page(request, template: str, partial: str, context: dict, *, status: int = 200):
    if request.htmx and not request.htmx.history_restore_request:
        template += f"#{partial}"
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ("HX-Request",))
    return response


# --- presets --------------------------------------------------------------------------------


def preset_cards() -> list[dict]:
    """The scenario presets as plain cards (key, title, description, channel, kind)."""
    return [
        {
            "key": key,
            "title": preset.title,
            "description": preset.description,
            "channel": preset.channel,
            "kind": preset.kind,
        }
        for key, preset in presets.PRESETS.items()
    ]


# --- list -----------------------------------------------------------------------------------


@require_GET
def campaign_list(request):
    """Visible campaigns with filters, the approvals waiting for the user, and the presets."""
    user = request.user
    form = CampaignFilterForm(request.GET)
    status = 200
    if form.is_valid():
        data = form.cleaned_data
        campaigns = selectors.campaign_list_filtered(
            user,
            status=data["status"],
            channel=data["channel"],
            kind=data["kind"],
            department_id=data["department"].pk if data["department"] else None,
        )
    else:
        status, campaigns = 400, Campaign.objects.none()
    page_obj = Paginator(campaigns, PAGE_SIZE).get_page(request.GET.get("page"))
    is_manager = has_role_anywhere(user, Role.MANAGER)
    editor_departments = list(departments_where(user, Role.EDITOR))
    query = request.GET.copy()
    query.pop("page", None)
    return _htmx_page(
        request,
        "journeys/campaigns/list.html",
        "results",
        {
            "active_circle": "platform",
            "section": "campaigns",
            "form": form,
            "page_obj": page_obj,
            "filters": query.urlencode(),
            "approvals": list(selectors.approvals_queue(user)) if is_manager else [],
            "is_manager": is_manager,
            "presets": preset_cards() if editor_departments else [],
            "editor_departments": editor_departments,
            "own_department_ids": set(user.department_ids),
        },
        status=status,
    )


@require_POST
def preset_create(request):
    """One click: a draft made from a preset, owned by the chosen (or only) department."""
    departments = departments_where(request.user, Role.EDITOR)
    department_id = request.POST.get("owner_department") or ""
    department = (
        departments.filter(pk=department_id).first()
        if department_id.isdigit()
        else departments.order_by("name").first()
    )
    if department is None:
        raise PermissionDenied
    key = request.POST.get("key", "")
    if key not in presets.PRESETS:
        raise Http404
    try:
        campaign = presets.preset_create(key=key, by=request.user, owner_department=department)
    except ValidationError as exc:
        messages.error(request, " · ".join(_error_lines(exc)))
        return redirect("journeys:campaigns")
    messages.success(
        request, gettext("Draft created from the preset: check it and ask for approval.")
    )
    return redirect("journeys:campaign_edit", pk=campaign.pk)


# --- create and edit ------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def campaign_new(request):
    """The new-campaign form; on success the draft's edit page (with step 1) opens."""
    user = request.user
    if not departments_where(user, Role.EDITOR).exists():
        raise PermissionDenied
    form = CampaignForm(request.POST or None, user=user)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                campaign = campaign_create(by=user, **form.service_fields())
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, gettext("Campaign created. Now write its message."))
                return redirect("journeys:campaign_edit", pk=campaign.pk)
        status = 400
    return render(
        request,
        "journeys/campaigns/form.html",
        {"active_circle": "platform", "section": "campaigns", "form": form, "campaign": None},
        status=status,
    )


def _step_forms(campaign: Campaign, *, bound: StepForm | None = None) -> list[StepForm]:
    forms_ = []
    steps = selectors.campaign_steps(campaign)
    for step in steps:
        if bound is not None and bound.step is not None and bound.step.pk == step.pk:
            forms_.append(bound)
        else:
            forms_.append(StepForm(step=step))
    return forms_


def _new_step_form(campaign: Campaign, steps: Sequence[StepForm], *, bound=None) -> StepForm:
    if bound is not None and bound.step is None:
        return bound
    position = max((form.step.position for form in steps), default=0) + 1
    return StepForm(initial={"position": position, "delay_days": 1, "delay_hours": 0})


def _edit_page(request, campaign, *, form=None, step_form=None, status=200):
    steps = _step_forms(campaign, bound=step_form)
    return render(
        request,
        "journeys/campaigns/form.html",
        {
            "active_circle": "platform",
            "section": "campaigns",
            "campaign": campaign,
            "form": form or CampaignForm(user=request.user, campaign=campaign),
            "step_forms": steps,
            "new_step_form": _new_step_form(campaign, steps, bound=step_form),
            "editable": campaign.status in (Campaign.Status.DRAFT, Campaign.Status.PAUSED),
            "cron_slots": _cron_slots(campaign),
        },
        status=status,
    )


def _cron_slots(campaign: Campaign, count: int = 3) -> list:
    """The next few slots of a recurring campaign: the human reading of its cron."""
    if campaign.kind != Campaign.Kind.RECURRING or not campaign.cron:
        return []
    slots, after = [], max(timezone.now(), campaign.starts_at or timezone.now())
    while len(slots) < count:
        try:
            slot = next_run_after(campaign, after)
        except (ValueError, ValidationError):
            return []
        if slot is None or slot in slots:
            break
        slots.append(slot)
        after = slot
    return slots


@require_http_methods(["GET", "POST"])
def campaign_edit(request, pk: int):
    """Edit a draft or paused campaign's settings; its steps are saved one by one below."""
    campaign = _campaign_for(request.user, pk)
    _require_edit(request.user, campaign)
    if request.method == "GET":
        return _edit_page(request, campaign)
    form = CampaignForm(request.POST, user=request.user, campaign=campaign)
    if form.is_valid():
        try:
            campaign_update(campaign=campaign, by=request.user, **form.service_fields())
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, gettext("Campaign saved."))
            return redirect("journeys:campaign_edit", pk=campaign.pk)
    return _edit_page(request, campaign, form=form, status=400)


@require_POST
def step_save(request, pk: int):
    """Create or replace one step (its delay, A/B weights and content per language)."""
    campaign = _campaign_for(request.user, pk)
    _require_edit(request.user, campaign)
    position = request.POST.get("position", "")
    step = None
    if position.isdigit():
        step = campaign.steps.filter(position=int(position)).prefetch_related("variants").first()
    prefix = f"step{step.position if step else 'new'}"
    form = StepForm(request.POST, step=step, prefix=prefix, initial={})
    form.step = step
    if form.is_valid():
        try:
            services.step_save(campaign=campaign, by=request.user, **form.service_fields())
        except ValidationError as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, gettext("Step saved."))
            return redirect(reverse("journeys:campaign_edit", args=[campaign.pk]) + "#steps")
    return _edit_page(request, campaign, step_form=form, status=400)


@require_POST
def step_delete(request, pk: int, position: int):
    """Remove a step (a campaign keeps at least one)."""
    campaign = _campaign_for(request.user, pk)
    _require_edit(request.user, campaign)
    step = campaign.steps.filter(position=position).first()
    if step is None:
        raise Http404
    try:
        services.step_delete(step=step, by=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, gettext("Step removed."))
    return redirect(reverse("journeys:campaign_edit", args=[campaign.pk]) + "#steps")


# --- detail and results ---------------------------------------------------------------------


FUNNEL_LABELS = {
    "sent": _("Sent"),
    "delivered": _("Delivered"),
    "opened": _("Opened"),
    "clicked": _("Clicked"),
    "converted": _("Converted"),
}


def _actions(user, campaign: Campaign) -> list[tuple[str, str]]:
    """The lifecycle buttons this user may press now; the services check again."""
    can_edit, can_approve = campaign_can_edit(user, campaign), campaign_can_approve(user, campaign)
    status = campaign.status
    actions = []
    if status == Campaign.Status.DRAFT:
        if can_edit and campaign.approval_requested_at is None:
            actions.append("request_approval")
        if can_approve:
            actions.append("approve")
            if campaign.approval_requested_at is not None:
                actions.append("reject")
    if status in (Campaign.Status.SCHEDULED, Campaign.Status.RUNNING) and can_approve:
        actions.append("pause")
    if status == Campaign.Status.PAUSED and can_approve and campaign.approved_at:
        actions.append("resume")
    if status != Campaign.Status.COMPLETED and status != Campaign.Status.DRAFT and can_approve:
        actions.append("complete")
    return [(action, ACTION_LABELS[action]) for action in actions]


def _lift_points(lift) -> dict:
    """The lift and its interval in percentage points, signed, one decimal."""
    if not lift.enough:
        return {}
    return {
        "difference": f"{lift.difference * 100:+.1f}",
        "low": f"{lift.ci_low * 100:+.1f}",
        "high": f"{lift.ci_high * 100:+.1f}",
    }


def _duration(seconds: float | None) -> str:
    """Seconds as a short human duration: 0.8 s, 42 s, 3.5 min, 2.1 h."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return gettext("%(n)s s") % {"n": f"{seconds:.1f}" if seconds < 10 else f"{seconds:.0f}"}
    if seconds < 3600:
        return gettext("%(n)s min") % {"n": f"{seconds / 60:.1f}"}
    return gettext("%(n)s h") % {"n": f"{seconds / 3600:.1f}"}


@require_GET
def campaign_detail(request, pk: int):
    """A campaign's settings, lifecycle buttons, preview, and results."""
    user = request.user
    campaign = _campaign_for(user, pk)
    results = selectors.campaign_results(campaign)
    funnel = [(str(FUNNEL_LABELS[key]), count) for key, count in results["funnel"]]
    steps = selectors.campaign_steps(campaign)
    show_pii = can_view_pii(user)
    members = [
        {"pk": customer.pk, "label": _customer_label(customer, show_pii=show_pii)}
        for customer in selectors.segment_member_sample(campaign)
    ]
    return render(
        request,
        "journeys/campaigns/detail.html",
        {
            "active_circle": "platform",
            "section": "campaigns",
            "campaign": campaign,
            "experience_values": list(campaign.experience_values.all()),
            "steps": steps,
            "actions": _actions(user, campaign),
            "can_edit": campaign_can_edit(user, campaign),
            "editable": campaign.status in (Campaign.Status.DRAFT, Campaign.Status.PAUSED),
            "results": results,
            "funnel": funnel,
            "has_sends": results["total"] > 0,
            # plotly escapes <, > and / in its JSON, so it is safe inside a <script> element.
            "chart_json": funnel_figure(funnel).to_json() if results["total"] else "",
            "lift_pp": _lift_points(results["lift"]),
            "lift_minimum": selectors.LIFT_MIN_GROUP,
            "latency": {key: _duration(results["latency"][key]) for key in ("p50", "p95")},
            "runs": list(selectors.campaign_runs(campaign)),
            "preview_form": PreviewForm(),
            "members": members,
            "can_export": campaign.channel == Campaign.Channel.DIRECT_MAIL and show_pii,
        },
    )


# --- preview and test send --------------------------------------------------------------------


def _customer_label(customer: Customer, *, show_pii: bool) -> str:
    name = customer.full_name if show_pii else mask_text(customer.full_name)
    label = gettext("Customer #%(pk)s") % {"pk": customer.pk}
    return f"{label} · {name}" if name else label


def _preview_target(request, campaign: Campaign, form: PreviewForm):
    """(customer, step, variant) chosen in the preview form, or an error message."""
    data = form.cleaned_data
    customer = None
    if data.get("q"):
        customer = customer_list(q=data["q"], search_names=False).first()
        if customer is None:
            return None, None, None, gettext("No customer has this identifier.")
    elif data.get("customer"):
        customer = Customer.objects.filter(pk=data["customer"], merged_into__isnull=True).first()
        if customer is None:
            return None, None, None, gettext("Unknown customer.")
    else:
        return None, None, None, gettext("Enter a customer's identifier or pick a member.")
    steps = campaign.steps.all()
    step = (steps.filter(pk=data["step"]).first() if data.get("step") else None) or steps.order_by(
        "position"
    ).first()
    if step is None:
        return customer, None, None, gettext("The campaign has no step yet.")
    variants = Variant.objects.filter(step=step)
    variant = (
        variants.filter(label=data["variant"]).first() if data.get("variant") else None
    ) or variants.order_by("label").first()
    if variant is None:
        return customer, step, None, gettext("The step has no content yet.")
    return customer, step, variant, ""


@require_GET
def campaign_preview(request, pk: int):
    """The message as one real customer would get it (no tracking, nothing sent).

    Personal data in the result is masked unless the user may view it; an unmasked
    preview is audited like an unmasked profile view.
    """
    campaign = _campaign_for(request.user, pk)
    form = PreviewForm(request.GET)
    context = {"campaign": campaign, "preview_form": form, "preview": None, "error": ""}
    status = 200
    if form.is_valid():
        customer, step, variant, error = _preview_target(request, campaign, form)
        context["error"] = error
        if not error:
            try:
                rendered = preview_message(
                    campaign=campaign,
                    step=step,
                    variant=variant,
                    customer=customer,
                    viewer=request.user,
                    ip_address=request.META.get("REMOTE_ADDR"),
                )
            except ValidationError as exc:
                context["error"] = " ".join(exc.messages)
            else:
                context["preview"] = {
                    "customer": customer,
                    "customer_label": _customer_label(
                        customer, show_pii=can_view_pii(request.user)
                    ),
                    "step": step,
                    "variant": variant,
                    "language": rendered.language,
                    "subject": rendered.subject,
                    "body": rendered.body_text,
                }
        if context["error"]:
            status = 400
    else:
        context["error"] = gettext("Check the preview form.")
        status = 400
    context.update(active_circle="platform", section="campaigns")
    return _htmx_page(request, "journeys/campaigns/preview.html", "preview", context, status=status)


@require_POST
def campaign_send_test(request, pk: int):
    """Email the previewed message to the staff member themself (never a Delivery)."""
    campaign = _campaign_for(request.user, pk)
    _require_edit(request.user, campaign)
    form = PreviewForm(request.POST)
    if not request.user.email:
        messages.error(request, gettext("Your account has no email address to send the test to."))
    elif form.is_valid():
        customer, _step, variant, error = _preview_target(request, campaign, form)
        if error:
            messages.error(request, error)
        else:
            try:
                send_test(
                    campaign=campaign,
                    variant=variant,
                    to_email=request.user.email,
                    customer=customer,
                    by=request.user,
                )
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
            else:
                messages.success(
                    request,
                    gettext("Test sent to %(email)s.") % {"email": request.user.email},
                )
    else:
        messages.error(request, gettext("Check the preview form."))
    return redirect(reverse("journeys:campaign_detail", args=[campaign.pk]) + "#preview")


# --- lifecycle ---------------------------------------------------------------------------------


@require_POST
def campaign_action(request, pk: int, action: str):
    """Request approval, approve, reject, pause, resume or complete (the services decide)."""
    campaign = _campaign_for(request.user, pk)
    if action not in CAMPAIGN_ACTIONS:
        raise Http404
    allowed = (
        campaign_can_edit(request.user, campaign)
        if action == "request_approval"
        else campaign_can_approve(request.user, campaign)
    )
    if not allowed:
        raise PermissionDenied
    try:
        campaign_transition(
            campaign=campaign, action=action, by=request.user, note=request.POST.get("note", "")
        )
    except ValidationError as exc:
        messages.error(request, " · ".join(_error_lines(exc)))
    else:
        messages.success(request, str(ACTION_DONE[action]))
    return redirect("journeys:campaign_detail", pk=campaign.pk)


def _error_lines(error: ValidationError) -> list[str]:
    if hasattr(error, "error_dict"):
        return [
            f"{key}: {message}" if key != "__all__" else message
            for key, messages_ in error.message_dict.items()
            for message in messages_
        ]
    return list(error.messages)


# --- direct-mail export -----------------------------------------------------------------------


@require_GET
def campaign_dm_csv(request, pk: int):
    """The direct-mail campaign's addresses as CSV: personal data, so PII permission and an
    audit record are required."""
    campaign = _campaign_for(request.user, pk)
    if campaign.channel != Campaign.Channel.DIRECT_MAIL:
        raise Http404
    if not can_view_pii(request.user):
        raise PermissionDenied
    audit_record(
        actor=request.user,
        action="campaign.dm_export",
        target=campaign,
        department=campaign.owner_department,
        ip_address=request.META.get("REMOTE_ADDR"),
    )
    response = StreamingHttpResponse(
        csv_bytes_stream(direct_mail_csv(campaign)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-dm.csv"'
    response["Cache-Control"] = "no-store"
    return response


urlpatterns = [
    path("campaigns/", campaign_list, name="campaigns"),
    path("campaigns/new/", campaign_new, name="campaign_new"),
    path("campaigns/presets/", preset_create, name="preset_create"),
    path("campaigns/<int:pk>/", campaign_detail, name="campaign_detail"),
    path("campaigns/<int:pk>/edit/", campaign_edit, name="campaign_edit"),
    path("campaigns/<int:pk>/steps/", step_save, name="step_save"),
    path("campaigns/<int:pk>/steps/<int:position>/delete/", step_delete, name="step_delete"),
    path("campaigns/<int:pk>/preview/", campaign_preview, name="campaign_preview"),
    path("campaigns/<int:pk>/send-test/", campaign_send_test, name="campaign_send_test"),
    path("campaigns/<int:pk>/<slug:action>/", campaign_action, name="campaign_action"),
    path("campaigns/<int:pk>/direct-mail.csv", campaign_dm_csv, name="campaign_dm_csv"),
]
