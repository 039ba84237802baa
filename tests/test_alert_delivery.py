"""Alert routing and delivery against real servers on 127.0.0.1: a Slack stand-in (HTTP) and
an SMTP server (aiosmtpd), both started here. Time moves with ``clock.frozen``; nothing sleeps
except the one test of a receiver that hangs past the send timeout."""

from __future__ import annotations

import email
import email.policy
import json
import multiprocessing
import random
import re
import socket
import threading
from datetime import date, time, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from monitoring_core import clock
from monitoring_core.alerts.digest import digest_day_due, send_digest
from monitoring_core.alerts.outbox import Backoff, drain, enqueue
from monitoring_core.alerts.routing import routes_for
from monitoring_core.config import load_settings
from monitoring_core.errors import ConfigError, InvalidInput
from monitoring_core.models.alerts import Alert, AlertStatus, Channel
from monitoring_core.models.common import Severity
from monitoring_core.models.delivery import DeliveryKind, DeliveryStatus
from monitoring_core.models.incidents import Incident, TriggeredMetric
from monitoring_core.storage.driver import Cond

from .factories import NOW

T0 = NOW  # recent on purpose: mongomock expires non-CRITICAL alerts by the real clock
TOKEN = "T0SECRET/B0SECRET/xyzzySECRETtoken42"
PASSWORD = "hunter2-smtp-SECRET"
FAIRNESS, DATA = "demographic_parity:gender", "psi:income"
ROLES = {"compliance_officer": "co@example.org", "ml_lead": "ml@example.org", "cto": "cto@example.org",
         "executive": "ceo@example.org"}


# -- local servers ------------------------------------------------------------------------

class SlackReceiver:
    """An incoming-webhook stand-in. ``script`` lists the next answers: an int status (with
    ``retry_after`` for 429 via a tuple), or "hang". An error body quotes the request path,
    as a careless receiver might, so redaction has something to remove."""

    def __init__(self):
        self.script: list = []
        self.requests: list[str] = []
        self.delivered: list[dict] = []
        self.release = threading.Event()
        self.delay = 0.0  # seconds each answer takes
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(body.decode())
                answer = receiver.script.pop(0) if receiver.script else 200
                receiver.release.wait(receiver.delay)
                if answer == "hang":
                    receiver.release.wait(10)
                    return
                status, headers = answer if isinstance(answer, tuple) else (answer, {})
                reply = b"ok" if status == 200 else f"error at {self.path}".encode()
                if status == 200:
                    receiver.delivered.append(json.loads(body))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.handle_error = lambda *args: None  # a hung client went away: expected
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/{TOKEN}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def incidents(self) -> list[str]:
        return [re.search(r"incident=(INC-\w+)", json.dumps(p)).group(1) for p in self.delivered]

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"

    def to(self, address: str) -> list:
        return [m for m in self.messages if m["To"] == address]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def slack_receiver():
    receiver = SlackReceiver()
    yield receiver
    receiver.close()


def start_smtp(authenticator=None):
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port(), authenticator=authenticator,
                            auth_require_tls=False)
    controller.start()
    return mailbox, controller


@pytest.fixture
def smtp_server():
    mailbox, controller = start_smtp()
    yield mailbox, controller.port
    controller.stop()


@pytest.fixture(autouse=True)
def no_secrets_file(monkeypatch, tmp_path):
    monkeypatch.setenv("FAIRWATCH_SECRETS_FILE", str(tmp_path / "absent.toml"))


@pytest.fixture
def settings(slack_receiver, smtp_server):
    return load_settings(slack_webhook_url=slack_receiver.url, smtp_host="127.0.0.1", smtp_port=smtp_server[1],
                         smtp_starttls=False, smtp_from="fairwatch@example.org", alert_recipients=ROLES,
                         dashboard_url="https://fairwatch.example.org/", alert_send_timeout_s=2)


# -- helpers ------------------------------------------------------------------------------

def raise_alert(store, settings, metric=DATA, severity=Severity.CRITICAL, model="loan", at=T0):
    """Store an incident and its alert and enqueue the alert's deliveries, in one unit of work."""
    incident = Incident(model_id=model, severity=severity, assigned_to="ana", created_at=at,
                        metrics_triggered=[TriggeredMetric(metric_name=metric, value=0.31, threshold=0.25)],
                        affected_groups=["gender=female"] if metric == FAIRNESS else [])
    alert = Alert(incident_id=incident.incident_id, model_id=model, metric_name=metric, metric_value=0.31,
                  threshold=0.25, severity=severity, created_at=at)
    with store.transaction():
        store.incidents.insert(incident)
        store.alerts.insert(alert)
        enqueue(store, alert, routes_for(alert, settings))
    return alert


def deliveries(store, alert, channel=None):
    return [d for d in store.deliveries.for_alert(alert.alert_id) if channel is None or d.channel == channel]


def drain_until_idle(store, settings, advance, step=timedelta(minutes=5), rounds=200, **kwargs):
    for _ in range(rounds):
        drain(store, settings=settings, **kwargs)
        if not store.deliveries.due(clock.now() + timedelta(days=2)):
            return
        advance(step)
    raise AssertionError("the outbox never emptied")


# -- routing ------------------------------------------------------------------------------

def test_routing_by_severity_category_and_model(settings, caplog):
    caplog.set_level("INFO", logger="monitoring_core.alerts.routing")
    def routes(metric, severity, model="loan"):
        alert = Alert(incident_id="INC-1", model_id=model, metric_name=metric, metric_value=1, threshold=1,
                      severity=severity, created_at=T0)
        return [(r.channel, r.kind, r.role, r.recipient, r.mention_channel, r.delay, r.cancel_when)
                for r in routes_for(alert, settings)]

    slack, email_, hour = Channel.SLACK, Channel.EMAIL, timedelta(hours=1)
    notify, escalate, digest = DeliveryKind.NOTIFY, DeliveryKind.ESCALATION, DeliveryKind.DIGEST_ITEM
    assert routes(DATA, Severity.INFO) == []
    assert routes(DATA, Severity.WARNING) == [(slack, notify, None, None, False, timedelta(0), None),
                                              (email_, digest, "ml_lead", ROLES["ml_lead"], False, timedelta(0), None)]
    assert [r[2] for r in routes(FAIRNESS, Severity.WARNING)] == [None, "ml_lead", "compliance_officer"]
    assert routes(FAIRNESS, Severity.CRITICAL) == [
        (slack, notify, None, None, True, timedelta(0), None),
        (email_, notify, "compliance_officer", ROLES["compliance_officer"], False, timedelta(0), None),
        (email_, escalate, "cto", ROLES["cto"], False, hour, AlertStatus.ACKNOWLEDGED),
        (email_, notify, "executive", ROLES["executive"], False, timedelta(0), None)]
    assert routes(DATA, Severity.CRITICAL)[1:] == [
        (email_, notify, "ml_lead", ROLES["ml_lead"], False, timedelta(0), None),
        (email_, escalate, "cto", ROLES["cto"], False, hour, AlertStatus.ACKNOWLEDGED),
        (email_, escalate, "executive", ROLES["executive"], False, 4 * hour, AlertStatus.RESOLVED)]

    settings = load_settings(slack_webhook_url=settings.slack_webhook_url.get_secret_value(),
                             alert_recipients={"ml_lead": ROLES["ml_lead"]}, alert_models={"loan-approval": {
                                 "slack_webhook_url": "https://hooks.example.org/own",
                                 "recipients": {"ml_lead": "a@b.org"}}})
    assert [r[3] for r in routes(DATA, Severity.CRITICAL, "loan-approval")] == [None, "a@b.org"]
    assert "no address for cto (alert_recipients.cto)" in caplog.text


def test_per_model_overrides_come_from_a_secrets_table(monkeypatch, tmp_path):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[fairwatch]\nalert_recipients = {cto = "cto@example.org"}\n'
                       '[fairwatch.alert_models.loan-approval]\nrecipients = {cto = "loan-cto@example.org"}\n')
    monkeypatch.setenv("FAIRWATCH_SECRETS_FILE", str(secrets))
    settings = load_settings()
    assert settings.alert_contacts("loan-approval").recipients == {"cto": "loan-cto@example.org"}
    assert settings.alert_contacts("fraud").recipients == {"cto": "cto@example.org"}


def test_bad_channel_settings_are_refused_naming_the_setting(monkeypatch):
    monkeypatch.setenv("FAIRWATCH_SLACK_WEBHOOK_URL", f"http://hooks.slack.com/services/{TOKEN}")
    monkeypatch.setenv("FAIRWATCH_ALERT_RECIPIENTS", '{"cto": "not an address"}')
    with pytest.raises(ConfigError) as refused:
        load_settings()
    message = str(refused.value)
    assert "FAIRWATCH_SLACK_WEBHOOK_URL: Value error, must be an https:// URL" in message
    assert "FAIRWATCH_ALERT_RECIPIENTS['cto']" in message and "'not an address' is not an email address" in message
    assert "SECRET" not in message


# -- content ------------------------------------------------------------------------------

def test_critical_alert_reaches_slack_as_block_kit_and_email_with_both_parts(store, settings, slack_receiver,
                                                                             smtp_server):
    mailbox = smtp_server[0]
    with clock.frozen(T0):
        alert = raise_alert(store, settings, metric=FAIRNESS)
        report = drain(store, settings=settings)
    assert (report.sent, len(store.deliveries.due(T0 + timedelta(hours=2)))) == (3, 1)  # CTO waits an hour

    payload, = slack_receiver.delivered
    assert payload["text"].startswith("<!channel> 🚨 CRITICAL")
    header, facts, mention, actions = payload["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": "🚨 Fairness drift alert"}}
    assert [f["text"] for f in facts["fields"]] == [
        "*Model:* loan", f"*Metric:* {FAIRNESS}", "*Value:* 0.31 (threshold: 0.25)", "*Severity:* CRITICAL",
        "*Affected groups:* gender=female", f"*Incident:* {alert.incident_id}"]
    assert mention["text"]["text"] == "<!channel>"
    assert actions["elements"][0]["url"] == (f"https://fairwatch.example.org/incident_timeline?model=loan&"
                                             f"incident={alert.incident_id}")

    message, = mailbox.to(ROLES["compliance_officer"])
    assert message.get_content_type() == "multipart/alternative"
    plain, rich = message.get_body(("plain",)), message.get_body(("html",))
    assert "Affected groups: gender=female" in plain.get_content()
    assert f"incident={alert.incident_id}" in rich.get_content() and "<table>" in rich.get_content()
    stored = store.alerts.get(alert.alert_id)
    assert sorted(stored.channels_notified) == [Channel.EMAIL, Channel.SLACK]
    assert stored.email_message_id in (message["Message-ID"], mailbox.to(ROLES["executive"])[0]["Message-ID"])
    assert sorted((a.channel, a.outcome) for a in stored.delivery_attempts) == [
        (Channel.EMAIL, "sent"), (Channel.EMAIL, "sent"), (Channel.SLACK, "sent")]
    email_delivery = next(d for d in deliveries(store, alert, Channel.EMAIL) if d.role == "compliance_officer")
    assert email_delivery.message_ref == message["Message-ID"]


def test_info_alert_sends_nothing(store, settings, slack_receiver):
    with clock.frozen(T0):
        raise_alert(store, settings, severity=Severity.INFO)
        assert drain(store, settings=settings).sent == 0
    assert slack_receiver.requests == []


# -- retries ------------------------------------------------------------------------------

def test_server_errors_are_retried_with_jittered_exponential_backoff(store, settings, slack_receiver):
    slack_receiver.script = [500, 503]
    expected = random.Random(7)
    first, second = Backoff().delay(1, expected), Backoff().delay(2, expected)
    with clock.frozen(T0) as advance:
        alert = raise_alert(store, settings, severity=Severity.WARNING)
        drain(store, settings=settings, rng=random.Random(7))
        slack, = deliveries(store, alert, Channel.SLACK)
        assert (slack.status, slack.not_before) == (DeliveryStatus.PENDING, T0 + first)
        advance(first)
        rng = random.Random(7)
        rng.random()  # the first draw was the first delay
        drain(store, settings=settings, rng=rng)
        slack, = deliveries(store, alert, Channel.SLACK)
        assert slack.not_before == clock.now() + second and timedelta(0) <= second <= timedelta(seconds=30)
        advance(second)
        drain(store, settings=settings)
    slack, = deliveries(store, alert, Channel.SLACK)
    assert [a.outcome for a in slack.attempts] == ["retry", "retry", "sent"]
    assert "Slack answered HTTP 500" in slack.attempts[0].error and slack.status == DeliveryStatus.SENT
    assert [a.outcome for a in store.alerts.get(alert.alert_id).delivery_attempts] == ["retry", "retry", "sent"]
    assert len(slack_receiver.requests) == 3 and len(slack_receiver.delivered) == 1


def test_429_waits_exactly_as_long_as_retry_after_says(store, settings, slack_receiver):
    slack_receiver.script = [(429, {"Retry-After": "120"})]
    with clock.frozen(T0) as advance:
        alert = raise_alert(store, settings, severity=Severity.WARNING)
        drain(store, settings=settings)
        assert deliveries(store, alert, Channel.SLACK)[0].not_before == T0 + timedelta(seconds=120)
        advance(timedelta(seconds=119))
        assert drain(store, settings=settings).sent == 0
        advance(timedelta(seconds=1))
        assert drain(store, settings=settings).sent == 1


def test_a_4xx_is_final_and_recorded_with_its_reason(store, settings, slack_receiver):
    slack_receiver.script = [404]
    with clock.frozen(T0) as advance:
        alert = raise_alert(store, settings, severity=Severity.WARNING)
        assert drain(store, settings=settings).failed == 1
        advance(timedelta(days=1))
        assert drain(store, settings=settings).sent == 0
    slack, = deliveries(store, alert, Channel.SLACK)
    assert slack.status == DeliveryStatus.FAILED and len(slack_receiver.requests) == 1
    assert slack.final_error == "Slack answered HTTP 404: error at [redacted]"
    assert store.alerts.get(alert.alert_id).delivery_attempts[0].outcome == "failed"


def test_a_delivery_whose_alert_was_deleted_fails_without_stopping_the_drain(store, settings, slack_receiver):
    with clock.frozen(T0):
        gone = raise_alert(store, settings, severity=Severity.WARNING, model="gone")
        kept = raise_alert(store, settings, severity=Severity.WARNING, model="kept")
        store.driver.delete(store.alerts.collection, [Cond("alert_id", "==", gone.alert_id)])
        assert (drain(store, settings=settings).sent, slack_receiver.incidents()) == (1, [kept.incident_id])
    assert deliveries(store, gone, Channel.SLACK)[0].final_error == f"alert {gone.alert_id} was deleted before it " \
                                                                     "could be sent"


def test_a_receiver_that_hangs_times_out_and_is_retried(store, settings, slack_receiver):
    slack_receiver.script = ["hang"]
    settings = settings.model_copy(update={"alert_send_timeout_s": 0.3})
    with clock.frozen(T0):
        alert = raise_alert(store, settings, severity=Severity.WARNING)
        assert drain(store, settings=settings).retried == 1
    assert deliveries(store, alert, Channel.SLACK)[0].attempts[0].error == "Slack did not answer within 0.3 s"


def test_a_channel_that_stays_down_fails_after_the_maximum_age(store, settings):
    settings = settings.model_copy(update={"slack_webhook_url": load_settings(
        slack_webhook_url=f"http://127.0.0.1:{free_port()}/services/{TOKEN}").slack_webhook_url})
    with clock.frozen(T0) as advance:
        alert = raise_alert(store, settings, severity=Severity.WARNING)
        drain_until_idle(store, settings, advance, step=timedelta(hours=1))
    slack, = deliveries(store, alert, Channel.SLACK)
    assert slack.status == DeliveryStatus.FAILED and slack.attempts[-1].at == T0 + timedelta(hours=24)
    assert slack.final_error.startswith(f"still failing after {len(slack.attempts)} attempts: cannot reach Slack")


def test_a_channel_down_for_a_while_then_back_delivers_every_alert_once(store, settings, slack_receiver):
    slack_receiver.script = [503] * 60
    with clock.frozen(T0) as advance:
        alerts = [raise_alert(store, settings, severity=Severity.WARNING, model=f"m{i}") for i in range(25)]
        drain_until_idle(store, settings, advance, rng=random.Random(1))
    assert sorted(slack_receiver.incidents()) == sorted(a.incident_id for a in alerts)
    assert all(store.alerts.get(a.alert_id).channels_notified == [Channel.SLACK] for a in alerts)


def test_pending_deliveries_survive_a_restart(store, settings, slack_receiver, reopen):
    slack_receiver.script = [500]
    with clock.frozen(T0) as advance:
        alert = raise_alert(store, settings, severity=Severity.WARNING)
        drain(store, settings=settings)
        store = reopen()
        advance(timedelta(hours=1))
        assert drain(store, settings=settings).sent == 1
    assert slack_receiver.incidents() == [alert.incident_id]


def test_a_crashed_senders_claim_expires(store, settings, slack_receiver):
    with clock.frozen(T0) as advance:
        alert = raise_alert(store, settings, severity=Severity.WARNING)
        slack, = deliveries(store, alert, Channel.SLACK)
        assert store.deliveries.claim(slack.delivery_id, "crashed", T0, T0 + timedelta(minutes=5)) is not None
        assert drain(store, settings=settings).sent == 0 and slack_receiver.requests == []
        advance(timedelta(minutes=5))
        assert drain(store, settings=settings).sent == 1


def test_of_two_claimers_that_read_the_same_revision_one_wins(store, settings, monkeypatch):
    with clock.frozen(T0):
        alert = raise_alert(store, settings, severity=Severity.WARNING)
    slack, = deliveries(store, alert, Channel.SLACK)
    collection = store.deliveries.collection
    read_by_both = store.driver.load(collection, slack.delivery_id)
    assert store.deliveries.claim(slack.delivery_id, "first", T0, T0 + timedelta(minutes=5)).claimed_by == "first"
    monkeypatch.setattr(store.driver, "load", lambda c, doc_id: read_by_both)  # the second read before the write
    assert store.deliveries.claim(slack.delivery_id, "second", T0, T0 + timedelta(minutes=5)) is None
    monkeypatch.undo()
    assert store.deliveries.get(slack.delivery_id).claimed_by == "first"


def _drain_in_a_process(database, overrides, start, sent):
    from monitoring_core.storage.sqlite import SqliteStore

    store, settings = SqliteStore(database), load_settings(**overrides)
    start.wait()
    total = 0
    while (report := drain(store, settings=settings, limit=3)).sent + report.skipped:
        total += report.sent
    sent.put(total)
    store.close()


def test_two_processes_draining_one_outbox_send_each_delivery_once(tmp_path, settings, slack_receiver):
    from monitoring_core.storage.sqlite import SqliteStore

    database = tmp_path / "fairwatch.db"
    store = SqliteStore(database)
    store.ensure_schema()
    alerts = [raise_alert(store, settings, severity=Severity.WARNING, model=f"m{i}") for i in range(40)]
    store.close()
    slack_receiver.delay = 0.02  # so that the two senders overlap
    overrides = {"slack_webhook_url": slack_receiver.url, "alert_recipients": {}, "alert_send_timeout_s": 5}
    context = multiprocessing.get_context("spawn")
    start, sent = context.Event(), context.Queue()
    workers = [context.Process(target=_drain_in_a_process, args=(database, overrides, start, sent)) for _ in range(2)]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(60)
    assert [worker.exitcode for worker in workers] == [0, 0]
    assert all(sent.get(timeout=5) > 0 for _ in workers)  # both took part
    assert sorted(slack_receiver.incidents()) == sorted(a.incident_id for a in alerts)
    assert len(slack_receiver.requests) == 40


# -- escalation ---------------------------------------------------------------------------

def test_acknowledging_in_time_cancels_the_escalation(store, settings, smtp_server):
    mailbox = smtp_server[0]
    with clock.frozen(T0) as advance:
        handled = raise_alert(store, settings, metric=FAIRNESS)
        ignored = raise_alert(store, settings, metric=DATA, model="fraud")
        drain(store, settings=settings)
        store.alerts.update(handled.alert_id, {"status": AlertStatus.ACKNOWLEDGED, "acknowledged_by": "co",
                                               "acknowledged_at": T0 + timedelta(minutes=20)})
        advance(timedelta(hours=1))
        assert drain(store, settings=settings).cancelled == 1  # "fraud" was not acknowledged: the CTO hears
        store.alerts.update(ignored.alert_id, {"status": AlertStatus.ACKNOWLEDGED, "acknowledged_by": "ml",
                                               "acknowledged_at": T0 + timedelta(minutes=70)})
        advance(timedelta(hours=3))
        drain(store, settings=settings)  # acknowledged but unresolved after 4 hours: the executive hears
    cto_mail, = mailbox.to(ROLES["cto"])
    assert cto_mail["Subject"].strip().startswith("[Escalation] [Fairwatch CRITICAL] fraud")
    assert "not acknowledged within 1 hour" in cto_mail.get_body(("plain",)).get_content()
    assert [m["Subject"].split("] ")[-1].split(":")[0] for m in mailbox.to(ROLES["executive"])] == ["loan", "fraud"]
    cto_delivery, = [d for d in deliveries(store, handled) if d.role == "cto"]
    assert cto_delivery.status == DeliveryStatus.CANCELLED and cto_delivery.attempts == []


# -- digest -------------------------------------------------------------------------------

def test_the_digest_sends_one_email_per_recipient_once_grouped_by_model(store, settings, smtp_server,
                                                                         slack_receiver):
    mailbox = smtp_server[0]
    day = T0.date()
    with clock.frozen(T0) as advance:
        for model, metric, minutes in (("loan", DATA, 0), ("fraud", DATA, 5), ("loan", FAIRNESS, 10)):
            raise_alert(store, settings, metric=metric, severity=Severity.WARNING, model=model,
                        at=T0.replace(hour=0) + timedelta(minutes=minutes))
        raise_alert(store, settings, severity=Severity.WARNING, at=T0.replace(hour=0) + timedelta(days=1))
        drain(store, settings=settings)
        assert mailbox.messages == []  # a WARNING's email waits for the digest
        with pytest.raises(InvalidInput, match="once that day is over"):
            send_digest(store, day, settings=settings)
        advance(timedelta(days=1) - timedelta(hours=T0.hour) + timedelta(hours=8))
        assert send_digest(store, day - timedelta(days=1), settings=settings) == []  # an empty day
        assert {d.recipient for d in send_digest(store, settings=settings)} == {ROLES["ml_lead"],
                                                                                ROLES["compliance_officer"]}
        assert send_digest(store, day, settings=settings) == []
        drain(store, settings=settings)
        drain(store, settings=settings)
    ml, = mailbox.to(ROLES["ml_lead"])
    co, = mailbox.to(ROLES["compliance_officer"])
    assert len(mailbox.messages) == 2 and ml["Subject"] == f"[Fairwatch] 3 WARNING alerts on {day}"
    lines = ml.get_body(("plain",)).get_content().splitlines()
    assert [line for line in lines if line[:1].isalpha()][1:] == ["fraud", "loan"]  # after the title line
    assert [line.split()[3] for line in lines if line.startswith("  - ")] == [DATA, DATA, FAIRNESS]
    assert co["Subject"] == f"[Fairwatch] 1 WARNING alert on {day}" and FAIRNESS in co.get_body(("html",)).get_content()
    assert len(store.deliveries.held_for_digest((day + timedelta(days=1)).isoformat())) == 1  # the next day waits


def test_digest_day_due_follows_the_configured_time():
    at = time(8, 0)
    assert digest_day_due(T0.replace(day=25, month=11, year=2026, hour=8, minute=0), at) == date(2026, 11, 24)
    assert digest_day_due(T0.replace(day=25, month=11, year=2026, hour=7, minute=59), at) == date(2026, 11, 23)


# -- failures and secrets -----------------------------------------------------------------

def test_a_refused_smtp_login_is_a_clear_final_failure(store, settings):
    def refuse(server, session, envelope, mechanism, auth_data):
        return AuthResult(success=False, handled=False)

    mailbox, controller = start_smtp(refuse)
    try:
        settings = settings.model_copy(update={
            "smtp_port": controller.port, "smtp_username": "fairwatch",
            "smtp_password": load_settings(smtp_password=PASSWORD).smtp_password})
        with clock.frozen(T0):
            alert = raise_alert(store, settings)
            drain(store, settings=settings)
    finally:
        controller.stop()
    delivery, = [d for d in deliveries(store, alert, Channel.EMAIL) if d.role == "ml_lead"]
    assert delivery.status == DeliveryStatus.FAILED and mailbox.messages == []
    assert re.fullmatch(r"SMTP server 127\.0\.0\.1:\d+ refused the login of 'fairwatch' \(535 .*\); check "
                        r"smtp_username and smtp_password", delivery.final_error)


def test_secrets_appear_nowhere_the_tests_can_read(store, settings, slack_receiver, caplog):
    slack_receiver.script = [404, 500]
    settings = settings.model_copy(update={"smtp_password": load_settings(smtp_password=PASSWORD).smtp_password,
                                           "smtp_username": "fairwatch"})
    caplog.set_level("DEBUG")
    with clock.frozen(T0) as advance:
        alerts = [raise_alert(store, settings), raise_alert(store, settings, severity=Severity.WARNING)]
        drain_until_idle(store, settings, advance)  # SMTP without AUTH refuses the login
    readable = [caplog.text, repr(settings), str(settings.model_dump())]
    readable += [d.model_dump_json() for a in alerts for d in store.deliveries.for_alert(a.alert_id)]
    readable += [store.alerts.get(a.alert_id).model_dump_json() for a in alerts]
    assert "[redacted]" in "".join(readable)  # the 404's body quoted the webhook path
    assert "SMTP server" in "".join(readable) and "HTTP 500" in "".join(readable)
    for text in readable:
        assert "SECRET" not in text
