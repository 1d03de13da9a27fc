"""Circle ③ page: staff tasks made by campaigns (calls, visits), and their outcomes."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_POST

from config.org.models import Role
from config.org.selectors import has_role_anywhere
from customers.selectors import can_view_pii, mask_text
from journeys.feedback import staff_task_complete
from journeys.forms import TaskFilterForm, TaskOutcomeForm, add_service_errors
from journeys.models import StaffTask
from journeys.selectors import staff_task_for, staff_tasks_for

PAGE_SIZE = 50


@require_GET
def task_list(request):
    """ "My tasks" (assigned to me, or open to my departments and their stores); managers
    may switch to every task of the departments they manage."""
    user = request.user
    form = TaskFilterForm(request.GET)
    is_manager = has_role_anywhere(user, Role.MANAGER)
    status = 200
    if form.is_valid():
        scope, state = form.cleaned_data["scope"], form.cleaned_data["status"]
        if scope == "department" and not is_manager:
            raise PermissionDenied
        tasks = staff_tasks_for(user, scope=scope, status=state)
    else:
        status, tasks = 400, StaffTask.objects.none()
    page_obj = Paginator(tasks, PAGE_SIZE).get_page(request.GET.get("page"))
    show_pii = can_view_pii(user)
    for task in page_obj:
        name = task.customer.full_name
        task.customer_label = name if show_pii else mask_text(name)
    template = "journeys/tasks.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#results"
    response = render(
        request,
        template,
        {
            "active_circle": "platform",
            "section": "tasks",
            "form": form,
            "page_obj": page_obj,
            "is_manager": is_manager,
            "outcome_form": TaskOutcomeForm(),
            "next_url": request.get_full_path(),
        },
        status=status,
    )
    patch_vary_headers(response, ("HX-Request",))
    return response


@require_POST
def task_complete(request, pk: int):
    """Record a task's outcome; it is stored back as a ``staff_task_completed`` event."""
    task = staff_task_for(request.user, pk)
    form = TaskOutcomeForm(request.POST)
    if task.status != StaffTask.Status.OPEN:
        messages.error(request, gettext("This task is already closed."))
    elif form.is_valid():
        try:
            staff_task_complete(
                task=task,
                outcome_code=form.cleaned_data["outcome_code"],
                notes=form.cleaned_data["notes"],
                by=request.user,
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, gettext("Outcome recorded."))
    else:
        messages.error(request, gettext("Choose an outcome."))
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = "journeys:tasks"
    return redirect(next_url)


urlpatterns = [
    path("tasks/", task_list, name="tasks"),
    path("tasks/<int:pk>/complete/", task_complete, name="task_complete"),
]
