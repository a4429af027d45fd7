"""Background jobs, listed in one table, run by APScheduler in the demo or in their own process."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from apscheduler.schedulers.base import BaseScheduler
from flask import Flask

from app.jobs.poll import expire_stale, poll_pending, reconcile
from app.jobs.recovery import replay_push_journal, sweep_inbox
from app.jobs.retention import purge_callbacks

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    id: str
    func: Callable[[], object]
    #: config key holding the interval in seconds
    interval_key: str


#: Every periodic job. Each must be safe when two schedulers run by mistake (claims in the DB).
JOBS: tuple[Job, ...] = (
    Job("expire-stale", expire_stale, "POLL_INTERVAL"),
    Job("poll-pending", poll_pending, "POLL_INTERVAL"),
    Job("reconcile", reconcile, "RECONCILE_JOB_INTERVAL"),
    # Callbacks stored while the database blinked, or before their push answer was saved.
    Job("inbox-sweep", sweep_inbox, "POLL_INTERVAL"),
    # Push answers the database could not take (app.payments.journal).
    Job("push-journal", replay_push_journal, "POLL_INTERVAL"),
    # Raw callbacks older than PESADESK_CALLBACK_RETENTION_DAYS.
    Job("purge-callbacks", purge_callbacks, "RETENTION_JOB_INTERVAL"),
)


def run_once() -> dict[str, dict[str, int]]:
    """Every job of JOBS once, in order (the CLI's `jobs run-once`, and tests)."""
    return {job.id: job.func() for job in JOBS}  # type: ignore[misc]


def _run_in_context(app: Flask, job: Job) -> None:
    with app.app_context():
        try:
            job.func()
        except Exception:
            log.exception("job %s failed", job.id)
            raise
        finally:
            from app.extensions import db

            db.session.remove()


def add_jobs(app: Flask, scheduler: BaseScheduler) -> None:
    """Register every job of JOBS on `scheduler`, each run inside an app context."""
    for job in JOBS:
        scheduler.add_job(
            _run_in_context,
            "interval",
            args=(app, job),
            id=job.id,
            seconds=app.config[job.interval_key],
            max_instances=1,
            coalesce=True,
            replace_existing=True,
        )
