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

    try:
        bulk.check_options(args.model_id, args.model_version, args.epoch_unit)
        if args.errors:
            bulk.check_writable(args.errors)
        frame, lines, read_issues = bulk.read_table(args.file, args.encoding)
        store = _store()
        with tqdm(total=len(frame), unit="rows", desc="ingest", disable=args.quiet or None, file=sys.stderr) as bar:
            report = bulk.ingest_frame(store, frame, model_id=args.model_id, model_version=args.model_version,
                                       epoch_unit=args.epoch_unit, actor=_actor(args), source=str(args.file),
                                       lines=lines, read_issues=read_issues, progress=bar.update)
    except bulk.IngestIncomplete as exc:
        _report_ingest(exc.report, args.errors)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FairwatchError as exc:
        print(f"error: {exc}; no rows stored", file=sys.stderr)
        return 2
    _report_ingest(report, args.errors)
    return 0 if report.inserted or not report.rows_read else 1


def _report_ingest(report, errors_path: str | None) -> None:
    from .ingest import bulk

    print(report.summary())
    if errors_path and report.rejected:
        try:
            bulk.write_rejected(report, errors_path)
        except FairwatchError as exc:  # the rows are stored: say so, then why the list is missing
            print(f"error: {exc}", file=sys.stderr)
            return
        print(f"rejected rows written to {errors_path}")


def cmd_seed_demo(args) -> int:
    from tqdm import tqdm

    from .demo import seed_demo

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
    for model_id in models:
        summary = store.predictions.summary(model_id)
        baseline = store.baselines.active(model_id)
        print(f"- {model_id}: {summary.count} predictions ({summary.labelled} labelled), "
              f"{summary.first:%Y-%m-%d} .. {summary.last:%Y-%m-%d}, versions {', '.join(summary.model_versions)}; "
              f"active baseline: {baseline.snapshot_id if baseline else 'none'}")
    return 0


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
    print(f"audit chain BROKEN ({len(report.problems)} problems):")
    for problem in report.problems:
        print(f"  {problem}")
    return 1


def build_parser() -> argparse.ArgumentParser:
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
    ingest.add_argument("--encoding", help="the CSV file's text encoding (default: UTF-8, with or without BOM)")
    ingest.add_argument("--epoch-unit", choices=["s", "ms"],
                        help="read numeric timestamps as seconds or milliseconds since 1970-01-01 UTC")
    ingest.set_defaults(run=cmd_ingest)

    seed = commands.add_parser("seed-demo", help="create the demo models (loan-approval and a healthy one)")
    seed.add_argument("--seed", type=int, default=7, help="random seed (same seed, same data)")
    seed.add_argument("--force", action="store_true", help="seed even if the store has data")
    seed.set_defaults(run=cmd_seed_demo)

    commands.add_parser("status", help="what the store holds").set_defaults(run=cmd_status)
    commands.add_parser("purge", help="apply the retention policy now").set_defaults(run=cmd_purge)
    commands.add_parser("verify-audit", help="check the audit log's hash chain").set_defaults(run=cmd_verify_audit)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except FairwatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
