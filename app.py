"""Fairwatch: the Streamlit app. Run with ``streamlit run app.py``.

This file opens the store once per process, seeds the demo on a first start, starts the
scheduler sidecar, signs the user in (streamlit-authenticator over the store's ``users``;
lockout and audit in :mod:`monitoring_core.users`) and builds the navigation; each page in
``pages/`` is a short script that calls ``monitoring_core`` and draws.
"""

from __future__ import annotations

from datetime import timedelta

import streamlit as st
import streamlit_authenticator as stauth

import widgets
from monitoring_core import users, views
from monitoring_core.config import get_settings
from monitoring_core.errors import FairwatchError, Forbidden
from monitoring_core.models.user import User
from monitoring_core.scheduler_sidecar import sidecar
from monitoring_core.seeding import needs_demo, seed_demo_once
from monitoring_core.storage import open_store

st.set_page_config(page_title="Fairwatch", page_icon=":material/monitoring:", layout="wide")


@st.cache_resource(show_spinner="Opening the store…")
def get_store():
    return open_store(get_settings())


SIGN_IN_FIELDS = {"Form name": "Sign in to Fairwatch", "Username": "Username", "Password": "Password",
                  "Login": "Sign in"}
ROLE_NAMES = {"admin": "Admin", "ml_engineer": "ML engineer", "compliance_officer": "Compliance officer",
              "auditor": "Auditor", "viewer": "Viewer"}
SIGNED_IN, COOKIE_READ, ENDED = "fw_user", "fw_cookie_read", "fw_session_ended"


def signed_in_user(store, settings) -> User | None:
    """The signed-in user; otherwise None, after drawing the sign-in form and any refusal.

    streamlit-authenticator draws the form and writes the signed cookie; the core decides:
    :func:`users.sign_in` checks every password (lockout, unknown names, audit) and
    :func:`users.resume_from_cookie` the cookie a new session brings (a reload, a link from
    an alert), so a sign-out, a new password or a disabled account ends sessions."""
    key, demo_key = users.cookie_key(settings)
    try:
        user = _session_user(store, key)
    except Forbidden as refused:  # disabled, locked, or gone
        _forget_session(_sentence(str(refused)))
    if user is None and (user := _sign_in_form(store, key, demo_key)) is None:
        return None
    st.session_state.pop(ENDED, None)
    with st.sidebar:
        st.markdown(f"**{user.name}**  \n{ROLE_NAMES[user.role]}")
        if st.button("Sign out", key="sign-out"):
            users.sign_out(store, user)
            _forget_session("You are signed out.")
    return user


def _session_user(store, key: str) -> User | None:
    """This session's user as the store has them now; a new session reads its cookie once."""
    username = st.session_state.get(SIGNED_IN)
    if username is None and not st.session_state.get(COOKIE_READ):
        st.session_state[COOKIE_READ] = True
        resumed = users.resume_from_cookie(store, st.context.cookies.get(users.COOKIE_NAME), key)
        username = st.session_state[SIGNED_IN] = resumed.username if resumed else None
    return users.current_user(store, username) if username else None


def _sign_in_form(store, key: str, demo_key: bool) -> User | None:
    """The form; the user when this run's submission signed them in (the form then goes at
    the rerun that follows the cookie being written in the browser)."""
    # No pause before the form: this version of the library reads the cookie from the
    # request, so its default 0.7 s wait would only delay the page.
    authenticator = stauth.Authenticate(users.credentials_for_authenticator(store), users.COOKIE_NAME, key,
                                        cookie_expiry_days=users.SESSION_LIFETIME / timedelta(days=1),
                                        auto_hash=False, login_sleep_time=0)
    st.session_state["logout"] = True  # the core has judged this session's cookie: the library must not again
    refusals = _passwords_checked_by_the_core(authenticator, store)
    authenticator.login(location="main", fields=SIGN_IN_FIELDS, key="sign-in")
    if username := st.session_state.get(SIGNED_IN):
        return users.current_user(store, username)
    if ended := st.session_state.get(ENDED):
        st.warning(ended, icon=":material/logout:")
    for refusal in refusals:
        st.error(_sentence(refusal), icon=":material/lock:")
    if demo_key:
        st.info("Demo: sign in as `admin`, `engineer`, `compliance`, `auditor` or `viewer`, with the password "
                "`<username>-demo` (for example `engineer` / `engineer-demo`).")
    return None


def _passwords_checked_by_the_core(authenticator, store) -> list[str]:
    """Route the form's password check through :func:`users.sign_in`; the refusals of this
    run (wrong password, lockout) are collected to be shown under the form."""
    refusals: list[str] = []

    def check(username: str, password: str) -> bool:
        try:
            user = users.sign_in(store, username, password)
        except Forbidden as refused:
            refusals.append(str(refused))
            return False
        st.session_state[SIGNED_IN] = user.username
        return True

    authenticator.authentication_controller.authentication_model.check_credentials = check
    return refusals


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _forget_session(why: str) -> None:
    """Sign this session out (its cookie, if the browser still sends it, no longer resumes
    anything) and rerun to the sign-in form saying why."""
    st.session_state[SIGNED_IN] = None
    for name in ("authentication_status", "username", "name"):  # the library's session keys
        st.session_state[name] = None
    st.session_state[ENDED] = why
    st.rerun()


def navigation_for(actor) -> tuple[object, dict]:
    """``st.navigation`` with the pages the actor's role may open (policy 6), by section.
    Before sign-in every page is declared but hidden, so a link to one survives the sign-in."""
    sections: dict[str, list] = {}
    pages = {}
    for spec in views.pages_for(actor) if actor is not None else views.PAGES:
        page = st.Page(f"app_pages/{spec.key}.py", title=spec.title, icon=PAGE_ICONS[spec.key], url_path=spec.key,
                       default=spec.key == "drift")
        sections.setdefault(spec.section, []).append(page)
        pages[spec.title] = spec
    return st.navigation(sections, position="sidebar" if actor is not None else "hidden"), pages


PAGE_ICONS = {"drift": ":material/monitoring:", "fairness": ":material/balance:",
              "health": ":material/health_metrics:", "incidents": ":material/crisis_alert:",
              "models": ":material/inventory_2:"}


def audit_page_view(store, actor, spec, selection) -> None:
    """Policy 6: who viewed what, when. Once per page, model and range in a session, not per rerun."""
    shown = {"model_id": selection.model_id, "range": str(selection.range),
             "incident_id": st.query_params.get("incident")}
    key = (spec.key, tuple(sorted((k, v) for k, v in shown.items() if v)))
    if st.session_state.get("fw_last_view") != key:
        views.record_page_view(store, actor, spec, **shown)
        st.session_state["fw_last_view"] = key


def main() -> None:
    # Declared first, hidden: a link to a page (from an alert) must survive the sign-in and
    # the reruns before it; the role's navigation below replaces it.
    navigation_for(None)
    widgets.remember_link()
    try:
        settings = get_settings()
        store = get_store()
    except FairwatchError as exc:
        st.error(f"**Fairwatch cannot start.** {exc}", icon=":material/error:")
        st.stop()
    try:
        if needs_demo(store, settings):
            with st.status("First start: creating the demo models…", expanded=True) as status:
                bar = st.progress(0.0)
                seed_demo_once(store, settings,
                               progress=lambda fraction, message: bar.progress(fraction, text=message))
                status.update(label="Demo models ready", state="complete", expanded=False)
        if settings.demo_mode:  # a demo store from before the accounts existed gets them too
            users.ensure_demo_users(store)
        st.session_state["store"] = store
        # The scheduler runs in this process once, whatever the number of sessions and reruns.
        sidecar(lambda: open_store(settings), settings)
        user = signed_in_user(store, settings)
    except FairwatchError as exc:
        st.error(f"**Fairwatch cannot start.** {exc}", icon=":material/error:")
        st.stop()
    if user is None:
        st.stop()
    actor = users.actor_of(user)
    st.session_state["actor"] = actor
    navigation, pages = navigation_for(actor)
    try:
        selection = widgets.controls([m.model_id for m in store.models.list()])
        st.session_state["selection"] = selection
        audit_page_view(store, actor, pages[navigation.title], selection)
        st.sidebar.caption(f"Store: {store.description}")
        navigation.run()
    except FairwatchError as exc:  # a lost connection, a refused action: said on the page, never a traceback
        st.error(str(exc), icon=":material/error:")


main()
