"""Getting predictions in and looking after the store: ingest, seed-demo, status, purge."""

from __future__ import annotations

import sys

from .. import audit, clock
from ..errors import FairwatchError
from . import common


def cmd_ingest(args) -> int:
    from tqdm import tqdm

    from ..ingest import bulk

    try:
        bulk.check_options(args.model_id, args.model_version, args.epoch_unit)
        if args.errors:
            bulk.check_writable(args.errors)
        frame, lines, read_issues = bulk.read_table(args.file, args.encoding)
        store = common.store()
        with tqdm(total=len(frame), unit="rows", desc="ingest", disable=args.quiet or None, file=sys.stderr) as bar:
            report = bulk.ingest_frame(store, frame, model_id=args.model_id, model_version=args.model_version,
                                       epoch_unit=args.epoch_unit, actor=common.actor(args), source=str(args.file),
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
    from ..ingest import bulk

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

    from ..seeding import seed_demo

    store = common.store()
    if not store.is_empty() and not args.force:
        print(f"{store.description} already has data; pass --force to add the demo models anyway")
        return 1
    with tqdm(total=100, unit="%", desc="seed-demo", disable=args.quiet or None, file=sys.stderr) as bar:
        def progress(fraction: float, message: str) -> None:
            bar.set_postfix_str(message)
            bar.update(round(fraction * 100) - bar.n)

        report = seed_demo(store, actor=common.actor(args), seed=args.seed, progress=progress)
    print(report)
    return 0


def cmd_status(args) -> int:
    store = common.store()
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
    removed = audit.purge_expired(common.store(), clock.now(), common.actor(args))
    print(", ".join(f"{name}: {count} removed" for name, count in removed.items()))
    return 0


def add_data_commands(commands) -> None:
    from ..demo import DEFAULT_SEED

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
    seed.add_argument("--seed", type=int, default=DEFAULT_SEED,
                      help=f"random seed (same seed, same data; default {DEFAULT_SEED}, as the app)")
    seed.add_argument("--force", action="store_true", help="seed even if the store has data")
    seed.set_defaults(run=cmd_seed_demo)

    commands.add_parser("status", help="what the store holds").set_defaults(run=cmd_status)
    commands.add_parser("purge", help="apply the retention policy now").set_defaults(run=cmd_purge)
