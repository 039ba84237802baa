"""Bring your own model: register it, its state, its baselines."""

from __future__ import annotations

import sys

from .. import clock
from . import common


def _risk_config(args):
    from ..models.common import validated
    from ..models.thresholds import MonitoringConfig

    return validated(MonitoringConfig, {"risk_level": args.risk, "positive_label": args.positive_class,
                                        "protected_attributes": args.protected, "class_labels": args.classes,
                                        "intersections": args.intersection or []})


def cmd_model_register(args) -> int:
    from ..catalog import register_model

    model = register_model(common.store(), _risk_config(args), model_id=args.model_id, actor=common.actor(args),
                           display_name=args.display_name, owner=args.owner)
    config = model.monitoring
    print(f"registered {model.model_id}: {config.risk_level} risk, positive class {config.positive_label!r}, "
          f"protected attributes {', '.join(config.protected_attributes) or 'none'}")
    return 0


def cmd_model_list(args) -> int:
    models = common.store().models.list()
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
    from .. import baselines

    store, actor = common.store(), common.actor(args)
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
    snapshots = common.store().baselines.list(args.model_id)
    if not snapshots:
        print("no baselines (python -m monitoring_core baseline create --help)")
    for snapshot in snapshots:
        print(_describe_baseline(snapshot))
    return 0


def cmd_baseline_activate(args) -> int:
    from .. import baselines

    print(_describe_baseline(baselines.activate(common.store(), args.snapshot_id, common.actor(args))))
    return 0


def cmd_baseline_reset(args) -> int:
    from .. import baselines

    snapshot, incident = baselines.reset(common.store(), model_id=args.model_id, actor=common.actor(args), reason=args.reason)
    print(_describe_baseline(snapshot))
    print(f"incident {incident.incident_id} documents the reset")
    return 0


def cmd_baseline_compare(args) -> int:
    from .. import baselines

    table = baselines.compare(common.store(), args.reference, args.candidate)
    if args.format == "csv":
        table.to_csv(sys.stdout, index=False)
    else:
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


def cmd_model_status(args) -> int:
    model = common.store().models.get(args.model_id)
    print(f"{model.model_id}: " + (f"FROZEN since {model.frozen_at:%Y-%m-%d %H:%M} UTC by {model.frozen_by_incident} "
                                   f"({model.frozen_reason}); route predictions to manual review"
                                   if model.frozen else "serving normally (not frozen)"))
    return 0


def cmd_model_unfreeze(args) -> int:
    from ..incidents import unfreeze

    unfreeze(common.store(), args.model_id, actor=common.acting(args), reason=args.reason)
    print(f"{args.model_id}: freeze lifted")
    return 0


def add_model_commands(commands) -> None:
    model = commands.add_parser("model", help="register a model for monitoring, list models").add_subparsers(
        dest="model_command", required=True, metavar="ACTION")
    register = model.add_parser("register", help="register a model (or change its registration)")
    register.add_argument("--model-id", required=True)
    register.add_argument("--risk", required=True, choices=["high", "medium", "low"],
                          help="risk level: sets the thresholds and the analysis cadence (policy sections 1-2)")
    register.add_argument("--positive-class", required=True, help="the favourable prediction, e.g. approve")
    register.add_argument("--protected", type=common.names, default=[], metavar="A,B",
                          help="protected attribute columns (metadata.protected_attributes.<name>)")
    register.add_argument("--intersection", type=common.names, action="append", metavar="A,B",
                          help="judge this combination of protected attributes as one more attribute (repeatable)")
    register.add_argument("--classes", type=common.names, metavar="A,B",
                          help="the model's classes, when known (the positive class must be one of them)")
    register.add_argument("--display-name")
    register.add_argument("--owner")
    register.set_defaults(run=cmd_model_register)
    model.add_parser("list", help="the registered models").set_defaults(run=cmd_model_list)
    status = model.add_parser("status", help="frozen or serving (policy 2.2)")
    status.add_argument("--model-id", required=True)
    status.set_defaults(run=cmd_model_status)
    lift = model.add_parser("unfreeze", help="lift a freeze (compliance officer or admin)", parents=[common.acting_parent()])
    lift.add_argument("--model-id", required=True)
    lift.add_argument("--reason", required=True)
    lift.set_defaults(run=cmd_model_unfreeze)

    baseline = commands.add_parser("baseline", help="a model's baselines: create, list, activate, compare"
                                   ).add_subparsers(dest="baseline_command", required=True, metavar="ACTION")
    create = baseline.add_parser("create", help="a baseline from a file (e.g. the validation set with its "
                                                "predictions) or from the last days of logged predictions")
    create.add_argument("--model-id", required=True)
    source = create.add_mutually_exclusive_group(required=True)
    source.add_argument("--from", dest="from_file", metavar="FILE", help="CSV or Parquet in the ingest column format")
    source.add_argument("--last", type=common.duration, metavar="7d", help="the model's logged predictions of this period")
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
