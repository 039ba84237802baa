"""The scheduler standalone, and its status."""

from __future__ import annotations

import sys

from ..config import get_settings
from . import common


def cmd_scheduler(args) -> int:
    import signal
    import threading

    from ..scheduler import DriftScheduler

    settings = get_settings()
    scheduler = DriftScheduler(common.store(), workers=settings.scheduler_workers)
    if args.once:
        scheduler.refresh()
        for execution in scheduler.run_due():
            print(f"{execution.check_id}: {execution.status} {execution.error or execution.summary or ''}".rstrip())
        return 0
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    scheduler.start()
    print(f"scheduler running {len(scheduler.jobs())} jobs on {scheduler.store.description}; Ctrl-C stops it",
          file=sys.stderr, flush=True)
    stopping.wait()
    scheduler.stop()
    print("scheduler stopped", file=sys.stderr)
    return 0


def cmd_scheduler_status(args) -> int:
    from ..scheduler import DriftScheduler

    scheduler = DriftScheduler(common.store())
    scheduler.refresh()
    for job in scheduler.get_schedule():
        state = "" if job.model_enabled is not False else " (model disabled)"
        last = f"{job.last_status} at {job.last_run:%Y-%m-%d %H:%M}" if job.last_status else "never run"
        print(f"{job.job_id}{state}: next {job.next_run_time:%Y-%m-%d %H:%M} UTC; last {last}"
              + (f"; checks {', '.join(job.checks)}" if job.checks else ""))
    stats = scheduler.get_statistics()
    rate = "n/a" if stats["success_rate"] is None else f"{stats['success_rate']}%"
    print(f"{stats['total_executions']} executions: {stats['completed_executions']} completed, "
          f"{stats['failed_executions']} failed, {stats['skipped_executions']} skipped; success rate {rate}")
    return 0


def add_scheduler_commands(commands) -> None:
    parser = commands.add_parser("scheduler", help="run the scheduled jobs in the foreground (Ctrl-C stops), or "
                                                  "show them (scheduler status)")
    parser.add_argument("--once", action="store_true", help="run the jobs that are due now, once, and exit")
    parser.set_defaults(run=cmd_scheduler)
    parser.add_subparsers(dest="scheduler_command", metavar="ACTION").add_parser(
        "status", help="jobs, next runs, last outcomes").set_defaults(run=cmd_scheduler_status)
