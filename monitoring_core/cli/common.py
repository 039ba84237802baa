"""What every command shares: who acts, the store, and argument types."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from ..config import get_settings
from ..models.common import SYSTEM, Actor


def actor(args) -> Actor:
    # The CLI runs with the operator's shell access to the store; it records who ran it.
    return Actor(user_id=args.actor, role="admin", system=args.actor == SYSTEM.user_id)


def store():
    from ..storage import open_store

    return open_store(get_settings())


def acting(args) -> Actor:
    # Incident commands act with a role (--role, default admin) so the role checks can be exercised.
    return Actor(user_id=args.actor, role=getattr(args, "role", "admin"), system=args.actor == SYSTEM.user_id)


def acting_parent() -> argparse.ArgumentParser:
    """``--actor`` and ``--role`` on a subcommand: who acts, in which role (default admin)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--actor", default=argparse.SUPPRESS, help="who acts (recorded in the audit log)")
    parent.add_argument("--role", default=argparse.SUPPRESS, help="the actor's role (default admin)",
                        choices=["admin", "ml_engineer", "compliance_officer", "auditor", "viewer"])
    return parent


def utc_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date or time: {text!r} (e.g. 2026-11-01 or "
                                         "2026-11-01T10:00:00Z)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give one or more names separated by commas")
    return names


def duration(text: str):
    from datetime import timedelta

    units = {"h": "hours", "d": "days"}
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit() or int(text[:-1]) == 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a duration such as 24h or 7d")
    return timedelta(**{units[text[-1]]: int(text[:-1])})
