"""The app's users on both backends: bcrypt hashes, admin-only management, audited sign-ins,
the lockout of policy 6 (five failures in 15 minutes lock for 15), the CLI."""

from __future__ import annotations

import io
from datetime import timedelta

import bcrypt
import pytest

from monitoring_core import users
from monitoring_core.errors import Conflict, Forbidden, InvalidInput
from monitoring_core.models.audit import AuditEvent
from monitoring_core.models.common import Actor

from .factories import NOW

ADMIN = Actor(user_id="root-admin", role="admin")
MINUTE = timedelta(minutes=1)


@pytest.fixture(autouse=True)
def fast_hashes(monkeypatch):
    """bcrypt's work factor 12 costs a quarter second a check; 4 tests the same code fast."""
    monkeypatch.setattr(users, "BCRYPT_ROUNDS", 4)


def events(store) -> list[str]:
    return [e.event_type for e in reversed(store.audit.list())]


@pytest.fixture
def alice(store):
    return users.add_user(store, username="alice", name="Alice Martin", role="compliance_officer",
                          password="correct horse", actor=ADMIN)


def test_an_account_stores_a_bcrypt_hash_never_the_password(store, alice):
    stored = store.users.get("alice")
    assert "correct horse" not in stored.model_dump_json()
    assert bcrypt.checkpw(b"correct horse", stored.password_hash.encode())
    assert events(store) == [AuditEvent.USER_ADDED]
    with pytest.raises(Conflict):
        users.add_user(store, username="alice", name="Other", role="viewer", password="12345678", actor=ADMIN)
    with pytest.raises(InvalidInput, match="at least 8"):
        users.add_user(store, username="bob", name="Bob", role="viewer", password="short", actor=ADMIN)
    with pytest.raises(InvalidInput, match="role"):
        users.add_user(store, username="bob", name="Bob", role="superuser", password="12345678", actor=ADMIN)


@pytest.mark.parametrize("role", ["ml_engineer", "compliance_officer", "auditor", "viewer"])
def test_only_an_admin_manages_users(store, alice, role):
    someone = Actor(user_id="someone", role=role)
    with pytest.raises(Forbidden):
        users.add_user(store, username="bob", name="Bob", role="viewer", password="12345678", actor=someone)
    with pytest.raises(Forbidden):
        users.set_role(store, "alice", "admin", actor=someone)
    with pytest.raises(Forbidden):
        users.disable(store, "alice", actor=someone)
    assert store.users.get("alice").role == "compliance_officer"


def test_sign_in_checks_the_password_and_is_audited(store, alice):
    assert users.sign_in(store, "alice", "correct horse", NOW).last_sign_in == NOW
    with pytest.raises(Forbidden, match="wrong username or password"):
        users.sign_in(store, "alice", "wrong", NOW)
    with pytest.raises(Forbidden, match="wrong username or password"):
        users.sign_in(store, "nobody", "wrong", NOW)
    users.sign_out(store, store.users.get("alice"))
    assert events(store)[1:] == [AuditEvent.USER_SIGNED_IN, AuditEvent.USER_SIGN_IN_FAILED,
                                 AuditEvent.USER_SIGN_IN_FAILED, AuditEvent.USER_SIGNED_OUT]


def test_five_failures_in_fifteen_minutes_lock_the_account_for_fifteen(store, alice):
    for i in range(4):
        with pytest.raises(Forbidden):
            users.sign_in(store, "alice", "wrong", NOW + i * MINUTE)
    with pytest.raises(Forbidden, match="now locked for 15 minutes"):
        users.sign_in(store, "alice", "wrong", NOW + 4 * MINUTE)
    with pytest.raises(Forbidden, match="locked"):  # even the right password
        users.sign_in(store, "alice", "correct horse", NOW + 18 * MINUTE)
    assert users.sign_in(store, "alice", "correct horse", NOW + 19 * MINUTE).locked_until is None
    assert AuditEvent.USER_LOCKED in events(store)


def test_failures_spread_over_more_than_fifteen_minutes_do_not_lock(store, alice):
    for i in range(6):
        with pytest.raises(Forbidden) as refused:
            users.sign_in(store, "alice", "wrong", NOW + i * 4 * MINUTE)
        assert "locked" not in str(refused.value)
    assert users.sign_in(store, "alice", "correct horse", NOW + 25 * MINUTE)


def test_a_disabled_account_cannot_sign_in_and_leaves_the_authenticator(store, alice):
    users.add_user(store, username="bob", name="Bob", role="viewer", password="12345678", actor=ADMIN)
    users.disable(store, "bob", actor=ADMIN)
    with pytest.raises(Forbidden):
        users.sign_in(store, "bob", "12345678", NOW)
    credentials = users.credentials_for_authenticator(store)["usernames"]
    assert list(credentials) == ["alice"] and credentials["alice"]["roles"] == ["compliance_officer"]
    with pytest.raises(Conflict, match="own account"):
        users.disable(store, "root-admin", actor=ADMIN)


def test_a_new_password_lifts_a_lockout(store, alice):
    for i in range(5):
        with pytest.raises(Forbidden):
            users.sign_in(store, "alice", "wrong", NOW + i * MINUTE)
    users.set_password(store, "alice", "battery staple", actor=ADMIN)
    assert users.sign_in(store, "alice", "battery staple", NOW + 6 * MINUTE)


def test_demo_users_one_per_role_created_once(store):
    assert users.ensure_demo_users(store) == list(users.DEMO_USERS)
    assert users.ensure_demo_users(store) == []
    assert sorted(u.role for u in store.users.list()) == sorted(
        ["admin", "ml_engineer", "compliance_officer", "auditor", "viewer"])
    assert users.sign_in(store, "engineer", "engineer-demo", NOW).role == "ml_engineer"


def test_the_first_admin_is_created_from_the_command_line(tmp_path, monkeypatch, capsys):
    from monitoring_core import config
    from monitoring_core.cli import main

    monkeypatch.setenv("FAIRWATCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FAIRWATCH_SEED_DEMO", "false")
    monkeypatch.delenv("MONGODB_URI", raising=False)
    config.get_settings.cache_clear()
    monkeypatch.setattr("sys.stdin", io.StringIO("a long passphrase\n"))
    assert main(["--actor", "ops", "users", "add", "alice", "--name", "Alice", "--role", "admin",
                 "--password-stdin"]) == 0
    with pytest.raises(SystemExit):  # argparse refuses a role that does not exist
        main(["users", "set-role", "alice", "nobody"])
    capsys.readouterr()
    assert main(["users", "list"]) == 0
    assert capsys.readouterr().out.startswith("alice\tadmin\tactive\tAlice")
    config.get_settings.cache_clear()


def test_a_cookie_resumes_a_session_until_the_account_ends_its_sessions(store, alice):
    issued = NOW
    resumed = users.resume_session(store, "alice", issued, NOW + MINUTE)
    assert resumed.username == "alice"
    entry = store.audit.list(event_types=[AuditEvent.USER_SIGNED_IN])[0]
    assert entry.details == {"username": "alice", "via": "cookie"}
    users.sign_out(store, alice, now=NOW + 2 * MINUTE)
    assert users.resume_session(store, "alice", issued, NOW + 3 * MINUTE) is None  # the copied cookie too
    assert users.resume_session(store, "alice", NOW + 4 * MINUTE, NOW + 5 * MINUTE) is not None  # signed in again
    before_new_password = NOW + 5 * MINUTE
    users.set_password(store, "alice", "battery staple", actor=ADMIN)  # at the real clock, after NOW
    assert users.resume_session(store, "alice", before_new_password) is None


def test_a_cookie_of_a_disabled_or_locked_account_resumes_nothing(store, alice):
    for i in range(5):
        with pytest.raises(Forbidden):
            users.sign_in(store, "alice", "wrong", NOW + i * MINUTE)
    with pytest.raises(Forbidden, match="locked"):
        users.resume_session(store, "alice", NOW - MINUTE, NOW + 5 * MINUTE)
    assert users.resume_session(store, "alice", NOW - MINUTE, NOW + 20 * MINUTE)  # the lock has run out
    users.disable(store, "alice", actor=ADMIN)
    with pytest.raises(Forbidden, match="disabled"):
        users.resume_session(store, "alice", NOW + 30 * MINUTE, NOW + 31 * MINUTE)
    with pytest.raises(Forbidden, match="disabled"):
        users.current_user(store, "alice")
    with pytest.raises(Forbidden, match="disabled"):
        users.current_user(store, "nobody")


def test_a_cookie_does_not_reset_the_count_of_failed_passwords(store, alice):
    for i in range(3):
        with pytest.raises(Forbidden):
            users.sign_in(store, "alice", "wrong", NOW + i * MINUTE)
    users.resume_session(store, "alice", NOW - MINUTE, NOW + 4 * MINUTE)
    assert len(store.users.get("alice").failed_sign_ins) == 3


def test_usernames_are_lower_case_and_unknown_names_are_audited(store):
    users.add_user(store, username=" Bob ", name="Bob", role="viewer", password="12345678", actor=ADMIN)
    assert store.users.get("bob").name == "Bob"
    assert users.sign_in(store, "BOB", "12345678", NOW).username == "bob"
    users.set_role(store, "Bob", "auditor", actor=ADMIN)
    assert store.users.get("bob").role == "auditor"
    with pytest.raises(Forbidden, match="wrong username or password"):
        users.sign_in(store, "mallory", "guess-123", NOW)
    failed = store.audit.list(event_types=[AuditEvent.USER_SIGN_IN_FAILED])[0]
    assert failed.details == {"username": "mallory", "known": False}


def test_a_password_the_sign_in_form_could_not_enter_is_refused(store):
    with pytest.raises(InvalidInput, match="space"):
        users.add_user(store, username="bob", name="Bob", role="viewer", password=" padded password", actor=ADMIN)


def cookie(key: str, **claims) -> str:
    import jwt

    return jwt.encode(claims, key, algorithm="HS256")


def test_only_a_genuine_unexpired_cookie_of_a_live_session_resumes_it(store, alice):
    key = "a-cookie-key-of-thirty-two-characters!"
    expires = NOW + users.SESSION_LIFETIME  # issued at NOW
    genuine = cookie(key, username="alice", exp_date=expires.timestamp())
    assert users.resume_from_cookie(store, genuine, key, NOW + MINUTE).username == "alice"
    assert users.resume_from_cookie(store, genuine, key, expires + MINUTE) is None  # expired
    assert users.resume_from_cookie(store, cookie("another-key-" * 3, username="alice",
                                                  exp_date=expires.timestamp()), key, NOW) is None  # forged
    for junk in (None, "", "not-a-jwt", cookie(key, username="alice"), cookie(key, exp_date=expires.timestamp()),
                 cookie(key, username=["alice"], exp_date=expires.timestamp())):
        assert users.resume_from_cookie(store, junk, key, NOW) is None
    users.sign_out(store, alice, now=NOW + 2 * MINUTE)
    assert users.resume_from_cookie(store, genuine, key, NOW + 3 * MINUTE) is None  # signed out after it was issued
