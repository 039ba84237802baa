"""``python -m monitoring_core``: the command line.

Every command opens the configured store (``FAIRWATCH_*`` / ``MONGODB_URI`` /
``.streamlit/secrets.toml``), and turns a :class:`~monitoring_core.errors.FairwatchError`
into one clear line on stderr and exit status 2. One module per group of commands.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import FairwatchError
from ..models.common import SYSTEM
from .analysis import add_analyze_command, add_health_command
from .audit import add_audit_commands
from .data import add_data_commands
from .incidents import add_incident_commands
from .models import add_model_commands
from .scheduler import add_scheduler_commands
from .suppressions import add_suppression_commands
from .users import add_users_commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m monitoring_core",
                                     description="Fairwatch: drift and fairness monitoring for deployed models.")
    parser.add_argument("--version", action="version", version=f"fairwatch {__version__}")
    parser.add_argument("--actor", default=SYSTEM.user_id, help="who is running the command (recorded in the audit log)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # In the order a new user meets them: load, register, baseline, analyse, act, operate.
    add_data_commands(commands)
    add_model_commands(commands)
    add_analyze_command(commands)
    add_incident_commands(commands)
    add_suppression_commands(commands)
    add_audit_commands(commands)
    add_health_command(commands)
    add_scheduler_commands(commands)
    add_users_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except FairwatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
