"""``manage.py refresh_segments``: fully recompute segment membership.

Without options, the dynamic segments whose last full computation is older than
``--older-than`` minutes (default 60) are recomputed — what the 15-minute django-q2
schedule does. ``--all`` recomputes every segment (static ones are recounted, their
snapshot kept); ``--segment ID`` (repeatable) only those. Segments go in dependency order,
so a segment is computed after the segments its rules refer to. ``--install-schedule``
creates (or corrects) that django-q2 schedule: run it once per installation.
"""

from __future__ import annotations

import datetime as dt
import time

from django.core.management.base import BaseCommand, CommandError

from customers.models import Segment
from customers.segments import (
    SegmentRuleError,
    segment_refresh,
    segments_in_dependency_order,
    segments_refresh_stale,
)
from customers.tasks import ensure_segment_schedules


class Command(BaseCommand):
    help = (
        "Fully recompute segment membership: the stale dynamic segments (default), every "
        "segment (--all) or the given ones (--segment ID)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--all", action="store_true", help="Recompute every segment, stale or not."
        )
        parser.add_argument(
            "--segment",
            type=int,
            action="append",
            dest="segment_ids",
            metavar="ID",
            help="Only this segment id (repeatable).",
        )
        parser.add_argument(
            "--install-schedule",
            action="store_true",
            help="Create or correct the 15-minute django-q2 schedule of this refresh, then stop.",
        )
        parser.add_argument(
            "--older-than",
            type=int,
            default=60,
            metavar="MINUTES",
            help="Without --all/--segment: recompute those last computed longer ago (60).",
        )

    def handle(self, *args, segment_ids, verbosity: int, **options):
        if options["install_schedule"]:
            changed = ensure_segment_schedules()
            self.stdout.write("Schedule installed." if changed else "Schedule already in place.")
            return
        started = time.monotonic()
        if options["all"] and segment_ids:
            raise CommandError("give either --all or --segment, not both")
        if options["older_than"] < 0:
            raise CommandError("--older-than: expected a number of minutes, 0 or more")
        if not options["all"] and not segment_ids:
            refreshed = segments_refresh_stale(
                older_than=dt.timedelta(minutes=options["older_than"])
            )
            if verbosity >= 1:
                self.stdout.write(
                    self.style.SUCCESS(
                        f"Recomputed {len(refreshed)} stale segment(s) in "
                        f"{time.monotonic() - started:.1f} s."
                    )
                )
            return
        segments = Segment.objects.all()
        if segment_ids:
            segments = segments.filter(pk__in=segment_ids)
            missing = set(segment_ids) - {s.pk for s in segments}
            if missing:
                raise CommandError(f"no segment with id {', '.join(map(str, sorted(missing)))}")
        failed = 0
        ordered = segments_in_dependency_order(segments)
        for segment in ordered:
            began = time.monotonic()
            try:
                count = segment_refresh(segment=segment)
            except SegmentRuleError as exc:
                failed += 1
                self.stderr.write(f"segment #{segment.pk} {segment.name}: {exc}")
                continue
            if verbosity >= 2:
                self.stdout.write(
                    f"#{segment.pk} {segment.name}: {count:,} members "
                    f"({time.monotonic() - began:.2f} s)"
                )
        if verbosity >= 1:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Recomputed {len(ordered) - failed} segment(s) in "
                    f"{time.monotonic() - started:.1f} s."
                )
            )
        if failed:
            raise CommandError(f"{failed} segment(s) could not be recomputed (see above)")
