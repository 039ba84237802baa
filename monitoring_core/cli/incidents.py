"""Incidents: list, show and work them (policy section 3)."""

from __future__ import annotations

from . import common


def _incident_line(incident) -> str:
    from ..incidents import sla

    timing = sla(incident)
    late = [name for name, breached in (("ack", timing.acknowledge_breached),
                                        ("investigate", timing.investigate_breached)) if breached]
    return (f"{incident.incident_id}  {incident.model_id}  {incident.severity}  {incident.status}"
            f"{' (recovered)' if incident.recovered else ''}  x{incident.occurrence_count}  "
            f"{', '.join(incident.metric_names)}  assigned: {incident.assigned_to or '-'}"
            + (f"  SLA breached: {', '.join(late)}" if late else ""))


def _incident_json(incident) -> dict:
    from ..incidents import sla

    return {**incident.model_dump(mode="json"), "sla": sla(incident).as_dict()}


def cmd_incidents_list(args) -> int:
    import json

    found = common.store().incidents.list(model_id=args.model_id, statuses=args.status)
    if args.json:
        print(json.dumps([_incident_json(i) for i in found]))
    else:
        print("\n".join(_incident_line(i) for i in found) or "no incidents")
    return 0


def cmd_incidents_show(args) -> int:
    import json

    print(json.dumps(_incident_json(common.store().incidents.get(args.incident_id)), indent=2))
    return 0


def cmd_incidents_change(args) -> int:
    from .. import incidents

    store, actor, target = common.store(), common.acting(args), args.incident_id
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


def add_incident_commands(commands) -> None:
    from ..models.alerts import MAX_ACCEPTED_RISK
    from ..models.incidents import IncidentStatus, ResolutionCategory, RootCauseCategory

    acting = common.acting_parent()
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
