"""The app's users: add, list, disable, set-role, set-password (admins; audited)."""

from __future__ import annotations

import getpass
import sys

from .. import users
from ..errors import InvalidInput
from . import common

ROLES = ["admin", "ml_engineer", "compliance_officer", "auditor", "viewer"]


def _password(args) -> str:
    # Never an argument: it would stay in the shell history and the process list.
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass(f"password for {args.username}: ")
    if first != getpass.getpass("again: "):
        raise InvalidInput("the two passwords differ")
    return first


def cmd_users_add(args) -> int:
    user = users.add_user(common.store(), username=args.username, name=args.name, role=args.role,
                          password=_password(args), email=args.email, actor=common.actor(args))
    print(f"added {user.username} ({user.role})")
    return 0


def cmd_users_list(args) -> int:
    found = users.list_users(common.store())
    if not found:
        print("no users (python -m monitoring_core users add --help)")
    for user in found:
        state = "disabled" if user.disabled else (f"locked until {user.locked_until:%H:%M} UTC"
                                                   if user.locked_until else "active")
        print(f"{user.username}\t{user.role}\t{state}\t{user.name}\t{user.email or ''}")
    return 0


def cmd_users_change(args) -> int:
    store, actor = common.store(), common.actor(args)
    if args.users_command == "disable":
        user = users.disable(store, args.username, actor=actor)
    elif args.users_command == "set-role":
        user = users.set_role(store, args.username, args.role, actor=actor)
    else:
        user = users.set_password(store, args.username, _password(args), actor=actor)
    print(f"{user.username}: {args.users_command} done")
    return 0


def add_users_commands(commands) -> None:
    group = commands.add_parser("users", help="the app's users: add, list, disable, set-role, set-password"
                                ).add_subparsers(dest="users_command", required=True, metavar="ACTION")
    add = group.add_parser("add", help="create an account (the password is asked for, or read from stdin)")
    add.add_argument("username")
    add.add_argument("--name", required=True, help="the person's name, shown in the app")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--email")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.set_defaults(run=cmd_users_add)
    group.add_parser("list", help="accounts, their roles and states").set_defaults(run=cmd_users_list)
    disable = group.add_parser("disable", help="the account can no longer sign in")
    disable.add_argument("username")
    disable.set_defaults(run=cmd_users_change)
    role = group.add_parser("set-role", help="change an account's role")
    role.add_argument("username")
    role.add_argument("role", choices=ROLES)
    role.set_defaults(run=cmd_users_change)
    password = group.add_parser("set-password", help="a new password (also lifts a lockout)")
    password.add_argument("username")
    password.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    password.set_defaults(run=cmd_users_change)
