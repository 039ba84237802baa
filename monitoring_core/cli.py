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
    _add_incident_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except FairwatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
