"""Analyse now, and the meta-monitoring probe."""

from __future__ import annotations

import sys

from . import common


def cmd_analyze(args) -> int:
    import json

    from tqdm import tqdm

    from ..analysis import Trigger, Window, run_analysis
    from ..models.record import RunStatus

    window = Window.parse(args.window)
    store = common.store()
    with tqdm(total=100, unit="%", desc=f"analyze {args.model_id}", disable=args.quiet or None,
              file=sys.stderr) as bar:
        def progress(fraction: float, message: str) -> None:
            bar.set_postfix_str(message)
            bar.update(round(fraction * 100) - bar.n)

        record = run_analysis(store, args.model_id, window, trigger=Trigger.CLI, actor=common.actor(args),
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


def cmd_health(args) -> int:
    from .. import health

    report = health.report(common.store())
    print(report.model_dump_json() if args.json else health.format_report(report))
    return 0 if report.healthy else 1


def add_health_command(commands) -> None:
    check = commands.add_parser("health", help="each model's last analysis and its age; exit 1 when any model has "
                                               "had none for 12 hours (a container or cron probe)")
    check.add_argument("--json", action="store_true", help="one JSON object (durations in seconds)")
    check.set_defaults(run=cmd_health)
