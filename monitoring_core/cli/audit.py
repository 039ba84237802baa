"""The audit log: verify its chain, export it."""

from __future__ import annotations

import contextlib
import sys

from .. import audit
from . import common


def cmd_audit_verify(args) -> int:
    report = audit.verify_chain(common.store())
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


def cmd_audit_export(args) -> int:
    store = common.store()
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(open(args.output, "w", encoding="utf-8", newline="")) if args.output else sys.stdout
        report = audit.export(store, out, args.format, actor=common.actor(args), since=args.since)
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
    export.add_argument("--since", type=common.utc_time, metavar="ISO", help="only entries at or after this time (UTC)")
    export.add_argument("--output", metavar="FILE", help="write here instead of stdout")
    export.set_defaults(run=cmd_audit_export)
