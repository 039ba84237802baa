"""The app's users: accounts, roles, passwords and sign-in checks (policy section 6).

Passwords are stored as bcrypt hashes (the hash streamlit-authenticator checks). Managing
users needs the ``operate`` permission (admins); every change, sign-in, failed sign-in and
lockout is audited. Five failed sign-ins within 15 minutes lock an account for 15 minutes,
during which even the right password is refused.

The first admin of a production deployment is created from the command line::

    python -m monitoring_core users add alice --name "Alice Martin" --role admin
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import bcrypt
import jwt

from . import audit, auth, clock
from .config import Settings
from .errors import ConfigError, Conflict, Forbidden, InvalidInput
from .models.audit import AuditEvent
from .models.common import SYSTEM, Actor, validated
from .models.user import RoleName, User

LOCKOUT_ATTEMPTS = 5
LOCKOUT_WINDOW = timedelta(minutes=15)
LOCKOUT_DURATION = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 8
#: The app's sign-in cookie: its name and how long it lasts.
COOKIE_NAME = "fairwatch_session"
SESSION_LIFETIME = timedelta(days=1)
WRITE_ATTEMPTS = 5
#: bcrypt's work factor (2**12 rounds, its default: about a quarter second a check).
BCRYPT_ROUNDS = 12

#: Demo mode only (the embedded store with the demo seeded): one user per role, password
#: ``<username>-demo``. Production never has them (see :func:`ensure_demo_users`).
DEMO_USERS: dict[str, tuple[str, RoleName]] = {
    "admin": ("Ada Admin", "admin"),
    "engineer": ("Eli Engineer", "ml_engineer"),
    "compliance": ("Carla Compliance", "compliance_officer"),
    "auditor": ("Aldo Auditor", "auditor"),
    "viewer": ("Vera Viewer", "viewer"),
}


#: Signs the demo's sign-in cookie. Public, so used in demo mode only and labelled there.
DEMO_COOKIE_KEY = "fairwatch-demo-cookie-key-not-a-secret-0000"


def cookie_key(settings: Settings) -> tuple[str, bool]:
    """The key that signs the app's sign-in cookie, and whether it is the public demo key;
    ``ConfigError`` outside demo mode without ``FAIRWATCH_COOKIE_KEY``."""
    if settings.cookie_key is not None:
        return settings.cookie_key.get_secret_value(), False
    if settings.demo_mode:
        return DEMO_COOKIE_KEY, True
    raise ConfigError("FAIRWATCH_COOKIE_KEY is not set: outside demo mode the app's sign-in cookie needs its own "
                      "signing key (32+ characters). Generate one with "
                      "`python -c \"import secrets; print(secrets.token_hex(32))\"` and keep it secret")


def hash_password(password: str) -> str:
    """A bcrypt hash of ``password`` (refused when shorter than 8 characters)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if password != password.strip():
        # The sign-in form strips what is typed, so such a password could never be entered.
        raise InvalidInput("a password cannot start or end with a space")
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds=BCRYPT_ROUNDS)).decode("ascii")


def password_matches(user: User, password: str) -> bool:
    return bcrypt.checkpw(password.encode("utf-8"), user.password_hash.encode("ascii"))


def normalise(username: str) -> str:
    """Usernames are lower case, as the sign-in form reads them (``Alice`` signs in as ``alice``)."""
    return username.strip().lower()


def add_user(store, *, username: str, name: str, role: RoleName, password: str, actor: Actor,
             email: str | None = None) -> User:
    """Create an account (the username in lower case); ``Conflict`` if the username exists."""
    auth.require(actor, auth.Permission.OPERATE)
    username = normalise(username)
    user = validated(User, {"username": username, "name": name, "role": role, "email": email,
                            "password_hash": hash_password(password)})
    with store.transaction():
        store.users.insert(user)
        audit.record(store, AuditEvent.USER_ADDED, actor, details={"username": username, "role": role})
    return user


def _change(store, username: str, changes: dict, actor: Actor, what: dict) -> User:
    auth.require(actor, auth.Permission.OPERATE)
    username = normalise(username)
    with store.transaction():
        user = store.users.update(username, {**changes, "updated_at": clock.now()})
        audit.record(store, AuditEvent.USER_CHANGED, actor, details={"username": username, **what})
    return user


def disable(store, username: str, *, actor: Actor) -> User:
    """The account can no longer sign in, and its open sessions end at their next page
    (it is kept: the audit log names it)."""
    if normalise(username) == actor.user_id:
        raise Conflict("you cannot disable your own account: ask another admin")
    return _change(store, username, {"disabled": True, "sessions_revoked_at": clock.now()}, actor,
                   {"disabled": True})


def set_role(store, username: str, role: RoleName, *, actor: Actor) -> User:
    """A new role, in force from the user's next page."""
    validated(User, {**store.users.get(normalise(username)).model_dump(), "role": role})  # a clear error for a bad role
    return _change(store, username, {"role": role}, actor, {"role": role})


def set_password(store, username: str, password: str, *, actor: Actor) -> User:
    """A new password; it lifts a lockout and ends the account's sessions signed in with the old one."""
    return _change(store, username, {"password_hash": hash_password(password), "failed_sign_ins": [],
                                     "locked_until": None, "sessions_revoked_at": clock.now()}, actor,
                   {"password": "changed"})


def list_users(store) -> list[User]:
    return store.users.list()


def sign_in(store, username: str, password: str, now: datetime | None = None) -> User:
    """Check a sign-in and record it: the user on success; ``Forbidden`` (with the reason a
    person can act on, never which of name or password was wrong) otherwise."""
    username = normalise(username)
    user = store.users.find(username)
    if user is None or user.disabled:
        # As slow as a real check, so the answer's timing does not tell which accounts exist.
        bcrypt.checkpw(password.encode("utf-8"), _UNKNOWN_USER_HASH)
        audit.record(store, AuditEvent.USER_SIGN_IN_FAILED, SYSTEM, details={"username": username, "known": False})
        raise Forbidden("wrong username or password")
    return record_sign_in(store, username, password_matches(user, password), now)


_UNKNOWN_USER_HASH = bcrypt.hashpw(b"no such account", bcrypt.gensalt(rounds=BCRYPT_ROUNDS))


def resume_session(store, username: str, issued_at: datetime, now: datetime | None = None) -> User | None:
    """A session resumed from a sign-in cookie issued at ``issued_at`` (a reload, a link from
    an alert, a restarted server): the user, audited as a sign-in, if the account still
    stands; None if the account's sessions were ended after the cookie was issued (a
    sign-out, a new password): such a cookie is no sign-in at all. ``Forbidden`` if the
    account is gone, disabled or locked. Failed attempts are not reset: only a password
    proves more than a cookie."""
    now = now or clock.now()
    user = store.users.find(normalise(username))
    if user is None or user.disabled:
        raise Forbidden(f"the account {username} is disabled or no longer exists")
    if user.sessions_revoked_at is not None and issued_at <= user.sessions_revoked_at:
        return None
    if user.locked_until is not None and now < user.locked_until:
        raise Forbidden(f"{username} is locked after {LOCKOUT_ATTEMPTS} failed sign-ins until "
                        f"{user.locked_until:%H:%M} UTC")
    audit.record(store, AuditEvent.USER_SIGNED_IN, Actor(user_id=user.username, role=user.role),
                 details={"username": user.username, "via": "cookie"})
    return user


def resume_from_cookie(store, token: str | None, key: str, now: datetime | None = None) -> User | None:
    """The user a sign-in cookie names when it is genuine (signed with ``key``), unexpired
    and its session not ended (:func:`resume_session`, which audits it); None otherwise.

    The cookie is the one streamlit-authenticator writes at a sign-in: a JWT (HS256) of
    ``username`` and ``exp_date`` (POSIX seconds), issued :data:`SESSION_LIFETIME` before it
    expires. Reading it here, not through the library, keeps the library's cookie component
    off every page once signed in (it reruns each new session once more)."""
    if not token:
        return None
    try:
        claims = jwt.decode(token, key, algorithms=["HS256"])
    except jwt.InvalidTokenError:
        return None
    username, expires = claims.get("username"), claims.get("exp_date")
    if not isinstance(username, str) or not isinstance(expires, int | float):
        return None
    now = now or clock.now()
    expires_at = datetime.fromtimestamp(expires, UTC)
    if expires_at <= now:
        return None
    return resume_session(store, username, expires_at - SESSION_LIFETIME, now)


def current_user(store, username: str) -> User:
    """The signed-in user as the store has them now (role changes apply at once);
    ``Forbidden`` once the account is disabled or removed."""
    user = store.users.find(username)
    if user is None or user.disabled:
        raise Forbidden(f"the account {username} has been disabled: you are signed out")
    return user


def record_sign_in(store, username: str, succeeded: bool, now: datetime | None = None) -> User:
    """Record a sign-in whose password was checked elsewhere (the app's sign-in form):
    the user when it stands; ``Forbidden`` when it failed or the account is locked or
    disabled. Failures count towards the lockout."""
    now = now or clock.now()
    for _ in range(WRITE_ATTEMPTS):
        user = store.users.get(username)
        if user.disabled:
            raise Forbidden(f"{username} is disabled")
        if user.locked_until is not None and now < user.locked_until:
            audit.record(store, AuditEvent.USER_SIGN_IN_FAILED, Actor(user_id=user.username, role=user.role),
                         details={"username": user.username, "locked": True})
            raise Forbidden(f"{username} is locked after {LOCKOUT_ATTEMPTS} failed sign-ins until "
                            f"{user.locked_until:%H:%M} UTC")
        try:
            return _record_attempt(store, user, succeeded, now)
        except Conflict:
            continue  # another attempt was recorded meanwhile: count again on fresh state
    raise Conflict(f"too many simultaneous sign-ins for {username}; try again")


def _record_attempt(store, user: User, succeeded: bool, now: datetime) -> User:
    actor = Actor(user_id=user.username, role=user.role)
    expect = {"failed_sign_ins": user.failed_sign_ins}
    with store.transaction():
        if succeeded:
            signed_in = store.users.update(user.username, {"failed_sign_ins": [], "locked_until": None,
                                                           "last_sign_in": now}, expect=expect)
            audit.record(store, AuditEvent.USER_SIGNED_IN, actor, details={"username": user.username})
            return signed_in
        recent = [t for t in user.failed_sign_ins if now - t < LOCKOUT_WINDOW] + [now]
        locked = len(recent) >= LOCKOUT_ATTEMPTS
        store.users.update(user.username, {"failed_sign_ins": [] if locked else recent,
                                           "locked_until": now + LOCKOUT_DURATION if locked else None},
                           expect=expect)
        audit.record(store, AuditEvent.USER_SIGN_IN_FAILED, actor, details={"username": user.username})
        if locked:
            audit.record(store, AuditEvent.USER_LOCKED, actor,
                         details={"username": user.username, "until": (now + LOCKOUT_DURATION).isoformat()})
    raise Forbidden("wrong username or password" + (f"; {user.username} is now locked for "
                                                    f"{LOCKOUT_DURATION.seconds // 60} minutes" if locked else ""))


def actor_of(user: User) -> Actor:
    """The acting identity of a signed-in user, for every core call the app makes."""
    return Actor(user_id=user.username, user_email=user.email, role=user.role)


def sign_out(store, user: User, now: datetime | None = None) -> None:
    """End every session of the account: its sign-in cookies no longer resume one, in this
    browser or any other (a copied cookie included)."""
    with store.transaction():
        store.users.update(user.username, {"sessions_revoked_at": now or clock.now()})
        audit.record(store, AuditEvent.USER_SIGNED_OUT, Actor(user_id=user.username, role=user.role),
                     details={"username": user.username})


def credentials_for_authenticator(store) -> dict:
    """The ``credentials`` streamlit-authenticator takes: enabled users with their hashes."""
    return {"usernames": {u.username: {"name": u.name, "email": u.email or "", "password": u.password_hash,
                                       "roles": [u.role]}
                          for u in store.users.list(include_disabled=False)}}


def ensure_demo_users(store) -> list[str]:
    """Create the demo users that are missing (demo mode only: the caller checks
    ``Settings.demo_mode``); returns the usernames created."""
    created = []
    for username, (name, role) in DEMO_USERS.items():
        if store.users.find(username) is None:
            add_user(store, username=username, name=name, role=role, password=f"{username}-demo", actor=SYSTEM)
            created.append(username)
    return created
