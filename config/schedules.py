"""One way to keep a django-q2 schedule as the code wants it: ``schedule_ensure``.

Every circle that runs periodic work (segments, campaigns, reports) declares its schedules
in code and calls ``schedule_ensure`` at start-up (the ``demo`` command, deploy scripts);
an operator's edit in the admin is corrected on the next call.
"""

from __future__ import annotations


def schedule_ensure(name: str, **wanted) -> bool:
    """Create the schedule called ``name``, or correct its fields to ``wanted``; idempotent.

    ``wanted`` holds Schedule fields (``func``, ``schedule_type``, ``minutes``, ``cron``,
    ``repeats``…). A cron schedule whose expression or type changed gets its next run
    recomputed; extra rows of the same name (two concurrent first calls) are deleted.
    Returns True when a row was created, changed or deleted.
    """
    from django.db import transaction
    from django_q.models import Schedule

    with transaction.atomic():
        rows = list(Schedule.objects.select_for_update().filter(name=name).order_by("pk"))
        if not rows:
            Schedule.objects.create(name=name, **wanted)
            return True
        schedule, duplicates = rows[0], rows[1:]
        for duplicate in duplicates:
            duplicate.delete()
        changed = [field for field, value in wanted.items() if getattr(schedule, field) != value]
        for field in changed:
            setattr(schedule, field, wanted[field])
        if schedule.schedule_type == Schedule.CRON and {"cron", "schedule_type"} & set(changed):
            schedule.next_run = schedule.calculate_next_run()
            changed.append("next_run")
        if changed:
            schedule.save(update_fields=changed)
        return bool(changed or duplicates)
