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


# -- bring your own model: register it, give it a baseline ----------------------------------


def _risk_config(args):
    from .models.common import validated
    from .models.thresholds import MonitoringConfig

    return validated(MonitoringConfig, {"risk_level": args.risk, "positive_label": args.positive_class,
                                        "protected_attributes": args.protected, "class_labels": args.classes,
                                        "intersections": args.intersection or []})


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give one or more names separated by commas")
    return names


def cmd_model_register(args) -> int:
    from .catalog import register_model

    model = register_model(_store(), _risk_config(args), model_id=args.model_id, actor=_actor(args),
                           display_name=args.display_name, owner=args.owner)
    config = model.monitoring
    print(f"registered {model.model_id}: {config.risk_level} risk, positive class {config.positive_label!r}, "
          f"protected attributes {', '.join(config.protected_attributes) or 'none'}")
    return 0


def cmd_model_list(args) -> int:
    models = _store().models.list()
    if not models:
        print("no models registered (python -m monitoring_core model register --help)")
    for model in models:
        config = model.monitoring
        print(f"{model.model_id}\t{config.risk_level}\tpositive={config.positive_label}\t"
              f"protected={','.join(config.protected_attributes)}\t{model.display_name or ''}")
    return 0


def _describe_baseline(snapshot) -> str:
    state = "active" if snapshot.is_active else f"archived {snapshot.archived_at:%Y-%m-%d}" \
        if snapshot.archived_at else "inactive"
    return (f"{snapshot.snapshot_id}\t{snapshot.model_id}\t{state}\t{snapshot.sample_count:,} rows\t"
            f"created {snapshot.created_at:%Y-%m-%d %H:%M} UTC by {snapshot.created_by or '?'}\t"
            f"{snapshot.dataset_version or snapshot.source}")


def cmd_baseline_create(args) -> int:
    from . import baselines

    store, actor = _store(), _actor(args)
    if args.from_file:
        snapshot, rejected = baselines.create_baseline_from_file(
            store, args.from_file, model_id=args.model_id, actor=actor, model_version=args.model_version,
            encoding=args.encoding, epoch_unit=args.epoch_unit, activate=not args.inactive)
        for issue in rejected[:20]:
            print(f"  left out: {issue}", file=sys.stderr)
        if len(rejected) > 20:
            print(f"  ... and {len(rejected) - 20} more rows left out", file=sys.stderr)
    else:
        end = clock.now()
        snapshot = baselines.create_baseline_from_window(
            store, model_id=args.model_id, start=end - args.last, end=end,
            config=store.models.get(args.model_id).monitoring, actor=actor, activate=not args.inactive,
            reason=f"baseline from the last {args.last}")
    print(_describe_baseline(snapshot))
    return 0


def cmd_baseline_list(args) -> int:
    snapshots = _store().baselines.list(args.model_id)
    if not snapshots:
        print("no baselines (python -m monitoring_core baseline create --help)")
    for snapshot in snapshots:
        print(_describe_baseline(snapshot))
    return 0


def cmd_baseline_activate(args) -> int:
    from . import baselines

    print(_describe_baseline(baselines.activate(_store(), args.snapshot_id, _actor(args))))
    return 0


def cmd_baseline_reset(args) -> int:
    from . import baselines

    snapshot, incident = baselines.reset(_store(), model_id=args.model_id, actor=_actor(args), reason=args.reason)
    print(_describe_baseline(snapshot))
    print(f"incident {incident.incident_id} documents the reset")
    return 0


def cmd_baseline_compare(args) -> int:
    from . import baselines

    table = baselines.compare(_store(), args.reference, args.candidate)
    if args.format == "csv":
        table.to_csv(sys.stdout, index=False)
    else:
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


def _duration(text: str):
    from datetime import timedelta

    units = {"h": "hours", "d": "days"}
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit() or int(text[:-1]) == 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a duration such as 24h or 7d")
    return timedelta(**{units[text[-1]]: int(text[:-1])})


def add_model_commands(commands) -> None:
    model = commands.add_parser("model", help="register a model for monitoring, list models").add_subparsers(
        dest="model_command", required=True, metavar="ACTION")
    register = model.add_parser("register", help="register a model (or change its registration)")
    register.add_argument("--model-id", required=True)
    register.add_argument("--risk", required=True, choices=["high", "medium", "low"],
                          help="risk level: sets the thresholds and the analysis cadence (policy sections 1-2)")
    register.add_argument("--positive-class", required=True, help="the favourable prediction, e.g. approve")
    register.add_argument("--protected", type=_names, default=[], metavar="A,B",
                          help="protected attribute columns (metadata.protected_attributes.<name>)")
    register.add_argument("--intersection", type=_names, action="append", metavar="A,B",
                          help="judge this combination of protected attributes as one more attribute (repeatable)")
    register.add_argument("--classes", type=_names, metavar="A,B",
                          help="the model's classes, when known (the positive class must be one of them)")
    register.add_argument("--display-name")
    register.add_argument("--owner")
    register.set_defaults(run=cmd_model_register)
    model.add_parser("list", help="the registered models").set_defaults(run=cmd_model_list)

    baseline = commands.add_parser("baseline", help="a model's baselines: create, list, activate, compare"
                                   ).add_subparsers(dest="baseline_command", required=True, metavar="ACTION")
    create = baseline.add_parser("create", help="a baseline from a file (e.g. the validation set with its "
                                                "predictions) or from the last days of logged predictions")
    create.add_argument("--model-id", required=True)
    source = create.add_mutually_exclusive_group(required=True)
    source.add_argument("--from", dest="from_file", metavar="FILE", help="CSV or Parquet in the ingest column format")
    source.add_argument("--last", type=_duration, metavar="7d", help="the model's logged predictions of this period")
    create.add_argument("--model-version", help="version of every row (else a model_version column is required)")
    create.add_argument("--encoding", help="the CSV file's text encoding (default: UTF-8)")
    create.add_argument("--epoch-unit", choices=["s", "ms"], help="numeric timestamps: seconds or milliseconds")
    create.add_argument("--inactive", action="store_true", help="store it without activating it")
    create.set_defaults(run=cmd_baseline_create)
    listing = baseline.add_parser("list", help="baselines, newest first")
    listing.add_argument("--model-id")
    listing.set_defaults(run=cmd_baseline_list)
    activate = baseline.add_parser("activate", help="make a stored baseline the active one (the old one is archived)")
    activate.add_argument("snapshot_id")
    activate.set_defaults(run=cmd_baseline_activate)
    reset = baseline.add_parser("reset", help="policy 4.4: a new baseline from the last 7 days of predictions; the "
                                              "old one is archived and an incident documents the reset")
    reset.add_argument("--model-id", required=True)
    reset.add_argument("--reason", required=True, help="why (e.g. confirmed concept drift); recorded")
    reset.set_defaults(run=cmd_baseline_reset)
    compare = baseline.add_parser("compare", help="two baselines of a model side by side: drift of B against A")
    compare.add_argument("reference", metavar="A")
    compare.add_argument("candidate", metavar="B")
    compare.add_argument("--format", choices=["table", "csv"], default="table")
    compare.set_defaults(run=cmd_baseline_compare)


def cmd_health(args) -> int:
    from . import health

    report = health.report(_store())
    print(report.model_dump_json() if args.json else health.format_report(report))
    return 0 if report.healthy else 1


def add_health_command(commands) -> None:
    check = commands.add_parser("health", help="each model's last analysis and its age; exit 1 when any model has "
                                               "had none for 12 hours (a container or cron probe)")
    check.add_argument("--json", action="store_true", help="one JSON object (durations in seconds)")
    check.set_defaults(run=cmd_health)

# -- incidents and model freeze (issue 12.3) ---------------------------------------------


def _acting(args) -> Actor:
    # Incident commands act with a role (--role, default admin) so the role checks can be exercised.
    return Actor(user_id=args.actor, role=getattr(args, "role", "admin"), system=args.actor == SYSTEM.user_id)


def _incident_line(incident) -> str:
    from .incidents import sla

    timing = sla(incident)
    late = [name for name, breached in (("ack", timing.acknowledge_breached),
                                        ("investigate", timing.investigate_breached)) if breached]
    return (f"{incident.incident_id}  {incident.model_id}  {incident.severity}  {incident.status}"
            f"{' (recovered)' if incident.recovered else ''}  x{incident.occurrence_count}  "
            f"{', '.join(incident.metric_names)}  assigned: {incident.assigned_to or '-'}"
            + (f"  SLA breached: {', '.join(late)}" if late else ""))


def _incident_json(incident) -> dict:
    from .incidents import sla

    return {**incident.model_dump(mode="json"), "sla": sla(incident).as_dict()}


def cmd_incidents_list(args) -> int:
    import json

    found = _store().incidents.list(model_id=args.model_id, statuses=args.status)
    if args.json:
        print(json.dumps([_incident_json(i) for i in found]))
    else:
        print("\n".join(_incident_line(i) for i in found) or "no incidents")
    return 0


def cmd_incidents_show(args) -> int:
    import json

    print(json.dumps(_incident_json(_store().incidents.get(args.incident_id)), indent=2))
    return 0


def cmd_incidents_change(args) -> int:
    from . import incidents

    store, actor, target = _store(), _acting(args), args.incident_id
    if args.change == "ack":
        changed = incidents.acknowledge(store, target, actor=actor, notes=args.notes)
    elif args.change == "assign":
        changed = incidents.assign(store, target, args.assignee, actor=actor)
    elif args.change == "note":
        changed = incidents.add_action(store, target, args.action, actor=actor, notes=args.notes)
    elif args.change == "resolve":
        changed = incidents.resolve(store, target, actor=actor, root_cause_category=args.root_cause_category,
                                    resolution_category=args.resolution_category, notes=args.notes,
                                    root_cause=args.root_cause)
    elif args.approve:
        changed = incidents.approve_accept_risk(store, target, actor=actor)
    else:
        changed = incidents.request_accept_risk(store, target, actor=actor, rationale=args.rationale, days=args.days)
    print(_incident_line(changed))
    return 0


def cmd_model_status(args) -> int:
    model = _store().models.get(args.model_id)
    print(f"{model.model_id}: " + (f"FROZEN since {model.frozen_at:%Y-%m-%d %H:%M} UTC by {model.frozen_by_incident} "
                                   f"({model.frozen_reason}); route predictions to manual review"
                                   if model.frozen else "serving normally (not frozen)"))
    return 0


def cmd_model_unfreeze(args) -> int:
    from .incidents import unfreeze

    unfreeze(_store(), args.model_id, actor=_acting(args), reason=args.reason)
    print(f"{args.model_id}: freeze lifted")
    return 0


def _subcommands_of(commands, name: str, text: str):
    """The ACTION group of command ``name``, joining the one another block registered first."""
    parser = commands.choices.get(name) or commands.add_parser(name, help=text)
    found = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return found[0] if found else parser.add_subparsers(dest=f"{name}_command", required=True, metavar="ACTION")


def _add_incident_commands(commands) -> None:
    from .models.alerts import MAX_ACCEPTED_RISK
    from .models.incidents import IncidentStatus, ResolutionCategory, RootCauseCategory

    acting = argparse.ArgumentParser(add_help=False)
    acting.add_argument("--actor", default=argparse.SUPPRESS, help="who acts (recorded in the audit log)")
    acting.add_argument("--role", default=argparse.SUPPRESS, help="the actor's role (default admin)",
                        choices=["admin", "ml_engineer", "compliance_officer", "auditor", "viewer"])
    group = commands.add_parser("incidents", help="list and work incidents (policy section 3)")
    sub = group.add_subparsers(dest="incidents_command", required=True, metavar="ACTION")
    listing = sub.add_parser("list", help="incidents, newest first")
    listing.add_argument("--model-id")
    listing.add_argument("--status", nargs="+", choices=[s.value for s in IncidentStatus])
    listing.add_argument("--json", action="store_true", help="one JSON array (metrics, affected groups, SLA)")
    listing.set_defaults(run=cmd_incidents_list)
    show = sub.add_parser("show", help="one incident as JSON")
    show.add_argument("incident_id")
    show.set_defaults(run=cmd_incidents_show)
    actions = {"ack": "acknowledge: open -> investigating", "assign": "assign to a user",
               "note": "record a response action", "resolve": "investigating -> resolved",
               "accept-risk": "request (or --approve) accepting the risk (policy 12)"}
    parsers = {}
    for name, text in actions.items():
        parsers[name] = sub.add_parser(name, help=text, parents=[acting])
        parsers[name].add_argument("incident_id")
        parsers[name].set_defaults(run=cmd_incidents_change, change=name)
    parsers["ack"].add_argument("--notes")
    parsers["assign"].add_argument("assignee")
    parsers["note"].add_argument("action", help="what was done")
    parsers["note"].add_argument("--notes")
    resolutions = [c.value for c in ResolutionCategory if c != ResolutionCategory.ACCEPTED_RISK]
    parsers["resolve"].add_argument("--root-cause-category", required=True,
                                    choices=[c.value for c in RootCauseCategory])
    parsers["resolve"].add_argument("--resolution-category", required=True, choices=resolutions)
    parsers["resolve"].add_argument("--notes", required=True)
    parsers["resolve"].add_argument("--root-cause")
    risk = parsers["accept-risk"].add_mutually_exclusive_group(required=True)
    risk.add_argument("--rationale", help="why the risk is accepted")
    risk.add_argument("--approve", action="store_true", help="approve the pending request (not your own)")
    parsers["accept-risk"].add_argument("--days", type=int, default=MAX_ACCEPTED_RISK.days)

    model_sub = _subcommands_of(commands, "model", "register a model for monitoring, list models, its state")
    status = model_sub.add_parser("status", help="frozen or serving (policy 2.2)")
    status.add_argument("--model-id", required=True)
    status.set_defaults(run=cmd_model_status)
    lift = model_sub.add_parser("unfreeze", help="lift a freeze (compliance officer or admin)", parents=[acting])
    lift.add_argument("--model-id", required=True)
    lift.add_argument("--reason", required=True)
    lift.set_defaults(run=cmd_model_unfreeze)


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
    ingest.add_argument("--encoding", help="the CSV file's text encoding (default: UTF-8, with or without BOM)")
    ingest.add_argument("--epoch-unit", choices=["s", "ms"],
                        help="read numeric timestamps as seconds or milliseconds since 1970-01-01 UTC")
    ingest.set_defaults(run=cmd_ingest)

    seed = commands.add_parser("seed-demo", help="create the demo models (loan-approval and a healthy one)")
    seed.add_argument("--seed", type=int, default=DEFAULT_SEED,
                      help=f"random seed (same seed, same data; default {DEFAULT_SEED}, as the app)")
    seed.add_argument("--force", action="store_true", help="seed even if the store has data")
    seed.set_defaults(run=cmd_seed_demo)

    # In the order a new user meets them: register, baseline, analyse, act, operate.
    add_model_commands(commands)
    add_analyze_command(commands)
    _add_incident_commands(commands)
    add_suppression_commands(commands)
    add_audit_commands(commands)
    add_health_command(commands)
    add_scheduler_commands(commands)
    commands.add_parser("status", help="what the store holds").set_defaults(run=cmd_status)
    commands.add_parser("purge", help="apply the retention policy now").set_defaults(run=cmd_purge)
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


# -- suppressions: list, create, approve, expire (monitoring_core.alerts.suppressions) ----------


def _print_suppression(rule) -> None:
    approval = f"approved by {rule.approved_by}" if rule.approved_by else "not approved"
    print(f"{rule.suppression_id}  {rule.status:<7}  {rule.model_id}  {rule.scope}  "
          f"[{','.join(rule.suppress_severities)}]  {rule.start_time:%Y-%m-%d %H:%M} .. {rule.end_time:%Y-%m-%d %H:%M} "
          f"UTC  {rule.suppression_type}  by {rule.created_by}, {approval}: {rule.reason}")


def cmd_suppressions(args) -> int:
    from .alerts import suppressions
    from .models.common import Severity

    store, actor = _store(), Actor(user_id=args.actor, role=args.role, system=args.actor == SYSTEM.user_id)
    if args.action == "list":
        rules = suppressions.list_suppressions(store, actor, args.model_id, include_expired=args.all)
        for rule in rules:
            _print_suppression(rule)
        print(f"{len(rules)} suppression(s)" + ("" if args.all else " in force or pending (--all adds ended ones)"))
        return 0
    if args.action == "create":
        rule = suppressions.create(store, actor, model_id=args.model_id, metric_name=args.metric,
                                   metric_category=args.category, severities=args.severity or tuple(Severity),
                                   start_time=args.start, end_time=args.end, suppression_type=args.type,
                                   reason=args.reason)
    else:
        rule = getattr(suppressions, args.action)(store, actor, args.suppression_id)
    _print_suppression(rule)
    if rule.status == "pending":
        print("pending: it covers fairness metrics and takes effect once a compliance officer or admin other than "
              f"{rule.created_by} approves it (suppressions approve {rule.suppression_id})")
    return 0


def add_suppression_commands(commands) -> None:
    from datetime import datetime

    from .auth import Role
    from .models.alerts import MetricCategory, SuppressionType
    from .models.common import Severity

    role = argparse.ArgumentParser(add_help=False)
    role.add_argument("--role", choices=list(Role), default=Role.ADMIN.value,
                      help="the role --actor acts in (default admin); approving needs compliance_officer or admin")
    group = commands.add_parser("suppressions", help="alert suppression rules: list, create, approve, expire")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", parents=[role], help="rules in force or pending")
    listing.add_argument("--model-id")
    listing.add_argument("--all", action="store_true", help="include rules that ended")
    create = actions.add_parser("create", parents=[role], help="silence a model's alerts for a while")
    create.add_argument("--model-id", required=True)
    scope = create.add_mutually_exclusive_group()
    scope.add_argument("--metric", help="one metric (psi covers every psi:<feature>); default every metric")
    scope.add_argument("--category", choices=list(MetricCategory), help="one metric category")
    create.add_argument("--severity", action="append", choices=list(Severity),
                        help="a severity to silence (repeat it; default all)")
    create.add_argument("--start", type=datetime.fromisoformat, metavar="ISO", help="default now (times are UTC "
                                                                                     "unless an offset is given)")
    create.add_argument("--end", type=datetime.fromisoformat, metavar="ISO", required=True)
    create.add_argument("--type", choices=list(SuppressionType), required=True,
                        help="accepted_risk lasts 30 days at most")
    create.add_argument("--reason", required=True)
    for action, text in (("approve", "approve a pending rule (not its creator)"), ("expire", "end a rule now")):
        actions.add_parser(action, parents=[role], help=text).add_argument("suppression_id")
    group.set_defaults(run=cmd_suppressions)
