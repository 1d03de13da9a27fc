"""Import a customers (or orders) file from the command line, with the same checks as the web."""

from __future__ import annotations

import json
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from config.org.models import Department
from customers.imports import (
    ImportFileError,
    MappingError,
    import_job_create,
    import_job_run_start,
    import_job_validate,
    import_job_validate_start,
    run_pending_import,
)
from customers.models import ImportJob


class Command(BaseCommand):
    help = (
        "Validate and import a CSV/XLSX file of customers (or orders). Prints every bad row "
        "(row, column, reason) and exits non-zero when the file has errors, unless "
        "--skip-invalid is given."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--source", required=True, help="where the rows come from, e.g. pos")
        parser.add_argument("--department", required=True, help="slug of the owner department")
        parser.add_argument(
            "--kind", default=ImportJob.Kind.CUSTOMERS, choices=ImportJob.Kind.values
        )
        parser.add_argument(
            "--mapping",
            help='JSON object column header → field key, e.g. {"メールアドレス": "email"}; '
            "without it the mapping is guessed from the headers",
        )
        parser.add_argument(
            "--skip-invalid", action="store_true", help="import the valid rows, skip the bad ones"
        )

    def handle(self, *args, **options) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"file: no such file {path}")
        try:
            department = Department.objects.get(slug=options["department"])
        except Department.DoesNotExist:
            raise CommandError(f"--department: no department {options['department']!r}") from None
        mapping = None
        if options["mapping"]:
            try:
                mapping = json.loads(options["mapping"])
            except json.JSONDecodeError as exc:
                raise CommandError(f"--mapping: not JSON ({exc})") from None
            if not isinstance(mapping, dict):
                raise CommandError("--mapping: expected a JSON object of header → field key")
        try:
            with path.open("rb") as handle:
                job = import_job_create(
                    file=handle,
                    original_name=path.name,
                    kind=options["kind"],
                    source=options["source"],
                    department=department,
                    by=None,
                )
            if job.result.get("duplicate_of"):
                self.stdout.write(
                    f"This file was already imported (import #{job.result['duplicate_of']['id']});"
                    " importing it again changes nothing."
                )
            self.stdout.write(f"Mapping: {json.dumps(mapping or job.mapping, ensure_ascii=False)}")
            job = import_job_validate_start(
                job=job, mapping=mapping or job.mapping, by=None, queue=False
            )
        except (ImportFileError, MappingError) as exc:
            raise CommandError(str(exc)) from None
        started = time.monotonic()
        job = import_job_validate(job_id=job.pk)
        validated = time.monotonic()
        if job.status == ImportJob.Status.FAILED:
            raise CommandError(job.result.get("failure", "validation failed"))
        self.stdout.write(
            f"{job.total_rows} rows read, {job.error_count} errors "
            f"(validated in {validated - started:.1f} s)."
        )
        for error in job.row_errors.order_by("row", "pk").iterator():
            column = error.column or "-"
            self.stdout.write(f"row {error.row}, column {column}: {error.reason} [{error.value}]")
        if job.status == ImportJob.Status.INVALID and not options["skip_invalid"]:
            raise CommandError(
                f"{job.error_count} errors: nothing was imported (fix the file or pass "
                "--skip-invalid to import the other rows)"
            )
        job = import_job_run_start(
            job=job, skip_invalid_rows=options["skip_invalid"], by=None, queue=False
        )
        job = run_pending_import(job=job)
        imported = time.monotonic()
        if job.status != ImportJob.Status.DONE:
            raise CommandError(job.result.get("failure", "the import failed"))
        counts = ", ".join(f"{key}={value}" for key, value in job.result["counts"].items())
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported (job #{job.pk}) in {imported - validated:.1f} s: {counts}"
            )
        )
