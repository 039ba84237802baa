"""``python -m monitoring_core``: the command line.

Every command opens the configured store (``FAIRWATCH_*`` / ``MONGODB_URI`` /
``.streamlit/secrets.toml``), and turns a :class:`~monitoring_core.errors.FairwatchError`
into one clear line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__, audit, clock
from .config import get_settings
from .errors import FairwatchError
from .models.audit import AuditEvent
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
    store = _store()
    report = store.purge_expired(clock.now())
    audit.record(store, AuditEvent.RETENTION_PURGE, _actor(args), details=report.removed)
    print(", ".join(f"{name}: {count} removed" for name, count in report.removed.items()))
    return 0


def cmd_verify_audit(args) -> int:
    report = audit.verify(_store())
    if report.valid:
        print(f"audit chain intact: {report.total_entries} entries (seq {report.first_seq}..{report.last_seq})")
        return 0
    print(f"audit chain BROKEN ({len(report.problems)} problems in {report.total_entries} entries"
          + (f"; damaged entries: {', '.join(map(str, report.damaged))}" if report.damaged else "") + "):")
    for problem in report.problems:
        print(f"  {problem}")
    return 1


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
    commands.add_parser("verify-audit", help="check the audit log's hash chain").set_defaults(run=cmd_verify_audit)
    add_analyze_command(commands)
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
