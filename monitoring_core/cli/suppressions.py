"""Alert suppressions: list, create, approve, expire."""

from __future__ import annotations

import argparse
from datetime import datetime

from ..models.common import SYSTEM, Actor
from . import common


def _print_suppression(rule) -> None:
    approval = f"approved by {rule.approved_by}" if rule.approved_by else "not approved"
    print(f"{rule.suppression_id}  {rule.status:<7}  {rule.model_id}  {rule.scope}  "
          f"[{','.join(rule.suppress_severities)}]  {rule.start_time:%Y-%m-%d %H:%M} .. {rule.end_time:%Y-%m-%d %H:%M} "
          f"UTC  {rule.suppression_type}  by {rule.created_by}, {approval}: {rule.reason}")


def cmd_suppressions(args) -> int:
    from ..alerts import suppressions
    from ..models.common import Severity

    store, actor = common.store(), Actor(user_id=args.actor, role=args.role, system=args.actor == SYSTEM.user_id)
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

    from ..auth import Role
    from ..models.alerts import MetricCategory, SuppressionType
    from ..models.common import Severity

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
