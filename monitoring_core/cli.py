"""``python -m monitoring_core``: the command line.

Every command opens the configured store (``FAIRWATCH_*`` / ``MONGODB_URI`` /
``.streamlit/secrets.toml``), and turns a :class:`~monitoring_core.errors.FairwatchError`
into one clear line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from . import __version__, audit, clock
from .config import get_settings
from .errors import FairwatchError
from .models.common import SYSTEM, Actor


def _actor(args) -> Actor:
    # The CLI runs with the operator's shell access to the store; it records who ran it.
    return Actor(user_id=args.actor, role="admin", system=args.actor == SYSTEM.user_id)


def _store():
    from .storage import open_store

    return open_store(get_settings())


def cmd_ingest(args) -> int:
    from tqdm import tqdm

    from .ingest import bulk

    store = _store()
    frame, lines, read_issues = bulk.read_table(args.file)
    with tqdm(total=len(frame), unit="rows", desc="ingest", disable=args.quiet or None, file=sys.stderr) as bar:
        report = bulk.ingest_frame(store, frame, model_id=args.model_id, model_version=args.model_version,
                                   actor=_actor(args), source=str(args.file), lines=lines,
                                   read_issues=read_issues, progress=bar.update)
    print(report.summary())
    if args.errors and report.rejected:
        bulk.write_rejected(report, args.errors)
        print(f"rejected rows written to {args.errors}")
    return 0 if report.inserted or not report.rows_read else 1


def cmd_seed_demo(args) -> int:
    from tqdm import tqdm

    from .seeding import seed_demo

    store = _store()
    if not store.is_empty() and not args.force:
        print(f"{store.description} already has data; pass --force to add the demo models anyway")
        return 1
    with tqdm(total=100, unit="%", desc="seed-demo", disable=args.quiet or None, file=sys.stderr) as bar:
        def progress(fraction: float, message: str) -> None:
            bar.set_postfix_str(message)
            bar.update(round(fraction * 100) - bar.n)

        report = seed_demo(store, actor=_actor(args), seed=args.seed, progress=progress)
    print(report)
    return 0


def cmd_status(args) -> int:
    store = _store()
    print(f"store: {store.description}")
    print(f"audit signing key: {audit.AuditKey.from_settings().label}")
    models = store.predictions.model_ids()
    if not models:
        print("no predictions yet (python -m monitoring_core seed-demo adds two demo models)")
    damaged = 0
    for model_id in models:
        summary = store.predictions.summary(model_id)
        baseline = store.baselines.active(model_id)
        print(f"- {model_id}: {summary.count} predictions ({summary.labelled} labelled), "
              f"{summary.first:%Y-%m-%d} .. {summary.last:%Y-%m-%d}, versions {', '.join(summary.model_versions)}; "
              f"active baseline: {baseline.snapshot_id if baseline else 'none'}")
        problems = store.predictions.check(model_id)
        for problem in problems:
            print(f"  DAMAGED: {problem}")
        damaged += len(problems)
    # Like verify-audit: a store that cannot read back what it holds is not a clean status.
    return 1 if damaged else 0


def cmd_purge(args) -> int:
    removed = audit.purge_expired(_store(), clock.now(), _actor(args))
    print(", ".join(f"{name}: {count} removed" for name, count in removed.items()))
    return 0


# -- audit: verify, export (verify-audit is the older name of audit verify) ---------------------


def cmd_audit_verify(args) -> int:
    report = audit.verify_chain(_store())
    print(f"signing key: {report.key_label}")
    span = f"seq {report.first_seq}..{report.last_seq}" if report.total_entries else "empty"
    anchored = f", retention anchor at {report.anchor_seq}" if report.anchor_seq else ""
    if report.valid:
        print(f"audit chain intact: {report.total_entries} entries ({span}{anchored}), "
              f"signed checkpoint at {report.checkpoint_seq}")
        return 0
    first = report.first_problem
    print(f"audit chain BROKEN: first bad entry {first.seq} ({first.kind}); {len(report.problems)} problems in "
          f"{report.total_entries} entries ({span}{anchored})"
          + (f"; damaged entries: {', '.join(map(str, report.damaged))}" if report.damaged else "") + ":")
    for problem in report.problems:
        print(f"  [{problem.kind}] {problem}")
    return 1


def _utc_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date or time: {text!r} (e.g. 2026-11-01 or "
                                         "2026-11-01T10:00:00Z)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def cmd_audit_export(args) -> int:
    store = _store()
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(open(args.output, "w", encoding="utf-8", newline="")) if args.output else sys.stdout
        report = audit.export(store, out, args.format, actor=_actor(args), since=args.since)
    print(f"exported {report.entries} entries" + (f" to {args.output}" if args.output else ""), file=sys.stderr)
    if report.damaged:
        print(f"damaged entries not exported: {', '.join(map(str, report.damaged))}", file=sys.stderr)
        return 1
    return 0


def add_audit_commands(commands) -> None:
    commands.add_parser("verify-audit", help="check the audit log (same as: audit verify)").set_defaults(
        run=cmd_audit_verify)
    group = commands.add_parser("audit", help="the audit log: verify its chain, export it").add_subparsers(
        dest="audit_command", required=True, metavar="ACTION")
    group.add_parser("verify", help="check every entry, link and the signed checkpoint; exit 1 naming the first "
                                    "bad entry").set_defaults(run=cmd_audit_verify)
    export = group.add_parser("export", help="write the entries as JSON or CSV (audited)")
    export.add_argument("--format", choices=["json", "csv"], default="json")
    export.add_argument("--since", type=_utc_time, metavar="ISO", help="only entries at or after this time (UTC)")
    export.add_argument("--output", metavar="FILE", help="write here instead of stdout")
    export.set_defaults(run=cmd_audit_export)



# -- scheduler: run the jobs standalone, show them ----------------------------------------------


def cmd_scheduler(args) -> int:
    import signal
    import threading

    from .scheduler import DriftScheduler

    settings = get_settings()
    scheduler = DriftScheduler(_store(), workers=settings.scheduler_workers)
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
    from .scheduler import DriftScheduler

    scheduler = DriftScheduler(_store())
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


def build_parser() -> argparse.ArgumentParser:
    from .demo import DEFAULT_SEED

    parser = argparse.ArgumentParser(prog="python -m monitoring_core",
                                     description="Fairwatch: drift and fairness monitoring for deployed models.")
    parser.add_argument("--version", action="version", version=f"fairwatch {__version__}")
    parser.add_argument("--actor", default=SYSTEM.user_id, help="who is running the command (recorded in the audit log)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ingest = commands.add_parser("ingest", help="load predictions from a CSV or Parquet file")
    ingest.add_argument("file")
    ingest.add_argument("--model-id", help="model of every row (else a model_id column is required)")
    ingest.add_argument("--model-version", help="version of every row (else a model_version column is required)")
    ingest.add_argument("--errors", metavar="FILE", help="write the rejected rows' line numbers and reasons here (CSV)")
    ingest.set_defaults(run=cmd_ingest)

    seed = commands.add_parser("seed-demo", help="create the demo models (loan-approval and a healthy one)")
    seed.add_argument("--seed", type=int, default=DEFAULT_SEED,
                      help=f"random seed (same seed, same data; default {DEFAULT_SEED}, as the app)")
    seed.add_argument("--force", action="store_true", help="seed even if the store has data")
    seed.set_defaults(run=cmd_seed_demo)

    commands.add_parser("status", help="what the store holds").set_defaults(run=cmd_status)
    commands.add_parser("purge", help="apply the retention policy now").set_defaults(run=cmd_purge)
    add_audit_commands(commands)
    add_analyze_command(commands)
    add_scheduler_commands(commands)
    return parser


# -- analyze (issue 12) -----------------------------------------------------------------------

def cmd_analyze(args) -> int:
    import json

    from tqdm import tqdm

    from .analysis import Trigger, Window, run_analysis
    from .models.record import RunStatus

    window = Window.parse(args.window)
    store = _store()
    with tqdm(total=100, unit="%", desc=f"analyze {args.model_id}", disable=args.quiet or None,
              file=sys.stderr) as bar:
        def progress(fraction: float, message: str) -> None:
            bar.set_postfix_str(message)
            bar.update(round(fraction * 100) - bar.n)

        record = run_analysis(store, args.model_id, window, trigger=Trigger.CLI, actor=_actor(args),
                              baseline_id=args.baseline, progress=progress)
    if record.status is RunStatus.COMPLETED:
        print(f"{record.record_id}: {record.model_id} {window}: {record.sample_count:,} predictions, "
              f"{record.max_severity}, score {record.aggregated_score:.3f}, "
              f"incidents: {', '.join(record.incident_ids) or 'none'}")
    else:
        print(f"{record.record_id}: analysis skipped: {record.reason}", file=sys.stderr)
    if args.json:
        print(json.dumps({"record_id": record.record_id, "model_id": record.model_id, "status": record.status,
                          "reason": record.reason, "max_severity": record.max_severity,
                          "aggregated_score": record.aggregated_score, "incident_ids": record.incident_ids,
                          "sample_count": record.sample_count, "window": {"start": window.start.isoformat(),
                                                                          "end": window.end.isoformat()}}))
    return 0 if record.status is RunStatus.COMPLETED else 1


def add_analyze_command(commands) -> None:
    analyze = commands.add_parser("analyze", help="analyse a model's recent predictions now (writes a record)")
    analyze.add_argument("--model-id", required=True)
    analyze.add_argument("--window", default="24h",
                         help="24h, 7d, 30d (any hours or days up to now) or START..END in UTC (default 24h)")
    analyze.add_argument("--baseline", metavar="SNAPSHOT", help="compare with this baseline instead of the active one")
    analyze.add_argument("--json", action="store_true", help="print the outcome as JSON on the last line")
    analyze.set_defaults(run=cmd_analyze)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except FairwatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
