"""django-q2 tasks of circle ①: thin wrappers that re-fetch by id and call a service.

Each is idempotent (a task may run twice): the services act only on a job in the status
they expect.
"""

from __future__ import annotations

from customers.imports import import_job_run, import_job_validate


def validate_import(job_id: int) -> str | None:
    """Validate an uploaded file in full and record its bad rows."""
    job = import_job_validate(job_id=job_id)
    return job.status if job else None


def run_import(job_id: int) -> str | None:
    """Import a validated file, one chunk at a time, queueing a continuation when needed."""
    job = import_job_run(job_id=job_id)
    return job.status if job else None
