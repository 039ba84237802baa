"""Alert delivery: latency to a local Slack receiver and SMTP server, and outbox throughput.

    python benchmarks/bench_alerts.py

1. Latency (policy section 8: under 5 minutes after detection): 100 CRITICAL data-drift
   alerts, one at a time, each stored with its incident and enqueued in one unit of work,
   then one ``drain``; from the start of that unit of work to the receiver's arrival time
   of the Slack message and of the ML lead's email. A scheduled drain adds its polling
   interval on top. Reference in the same run: the same Slack payload posted with a bare
   ``urllib`` request and the same email sent with a bare ``smtplib`` session.
2. Throughput: 1,000 WARNING alerts queued while Slack answers 503 (each delivery fails
   once and waits for its retry), then Slack comes back and ``drain`` empties the outbox.
   Reference: 1,000 bare POSTs of the same payload to the same receiver.

Both servers run on 127.0.0.1 in this process; the store is the embedded SQLite one.
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiosmtpd.controller import Controller

from monitoring_core import clock
from monitoring_core.alerts.channels import email as email_channel
from monitoring_core.alerts.channels import slack
from monitoring_core.alerts.outbox import drain, enqueue
from monitoring_core.alerts.routing import routes_for
from monitoring_core.config import load_settings
from monitoring_core.models.alerts import Alert
from monitoring_core.models.common import Severity
from monitoring_core.models.incidents import Incident, TriggeredMetric
from monitoring_core.storage.sqlite import SqliteStore

LATENCY_ALERTS, QUEUED_ALERTS = 100, 1000


class Receivers:
    """A Slack stand-in and an SMTP server noting when each model's message arrived."""

    def __init__(self):
        self.slack_at: dict[str, float] = {}
        self.email_at: dict[str, float] = {}
        self.down = False
        receivers = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = 503 if receivers.down else 200
                if status == 200:
                    receivers.slack_at[body["blocks"][1]["fields"][0]["text"].split()[-1]] = time.perf_counter()
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.http.serve_forever, args=(0.05,), daemon=True).start()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.smtp = Controller(self, hostname="127.0.0.1", port=port)
        self.smtp.start()
        self.webhook = f"http://127.0.0.1:{self.http.server_address[1]}/services/T/B/token"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.email_at[str(message["Subject"]).split("] ")[-1].split(":")[0]] = time.perf_counter()
        return "250 OK"

    def close(self):
        self.smtp.stop()
        self.http.shutdown()


def raise_alert(store, settings, model: str, severity: Severity) -> Alert:
    incident = Incident(model_id=model, severity=severity, assigned_to="ml-lead",
                        metrics_triggered=[TriggeredMetric(metric_name="psi:income", value=0.31, threshold=0.25)])
    alert = Alert(incident_id=incident.incident_id, model_id=model, metric_name="psi:income", metric_value=0.31,
                  threshold=0.25, severity=severity)
    with store.transaction():
        store.incidents.insert(incident)
        store.alerts.insert(alert)
        enqueue(store, alert, routes_for(alert, settings))
    return alert


def percentiles(values: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[94]


def latency(store, settings, receivers: Receivers) -> None:
    slack_ms, email_ms = [], []
    for i in range(LATENCY_ALERTS):
        model = f"latency-{i}"
        started = time.perf_counter()
        raise_alert(store, settings, model, Severity.CRITICAL)
        drain(store, settings=settings)
        slack_ms.append((receivers.slack_at[model] - started) * 1000)
        email_ms.append((receivers.email_at[model] - started) * 1000)

    alert = store.alerts.list(limit=1)[0]
    payload = slack.slack_message(alert, affected_groups=[], dashboard_url=settings.dashboard_url, mention_channel=True)
    content = email_channel.alert_content(alert, affected_groups=[], dashboard_url=settings.dashboard_url)
    bare_slack, bare_email = [], []
    for _ in range(LATENCY_ALERTS):
        started = time.perf_counter()
        slack.post(receivers.webhook, payload, timeout=10)
        bare_slack.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        email_channel.send(email_channel.compose(content, sender=settings.smtp_from, recipient="ml@example.org"),
                           settings)
        bare_email.append((time.perf_counter() - started) * 1000)

    for name, measured, bare in (("Slack", slack_ms, bare_slack), ("email", email_ms, bare_email)):
        p50, p95 = percentiles(measured)
        print(f"{name:5}: enqueued -> received, p50 {p50:.1f} ms, p95 {p95:.1f} ms over {LATENCY_ALERTS} alerts "
              f"(bare send p50 {statistics.median(bare):.1f} ms; the outbox costs {p50 / statistics.median(bare):.1f}x; "
              f"policy target 300,000 ms)")


def throughput(store, settings, receivers: Receivers) -> None:
    receivers.down = True
    with clock.frozen(clock.now()) as advance:
        for i in range(QUEUED_ALERTS):
            raise_alert(store, settings, f"queued-{i}", Severity.WARNING)
        while drain(store, settings=settings, limit=500).retried:
            pass
        receivers.down = False
        advance(timedelta(hours=1))  # every retry is due
        started = time.perf_counter()
        sent = 0
        while report := drain(store, settings=settings, limit=500):
            if not report.sent:
                break
            sent += report.sent
        elapsed = time.perf_counter() - started
    received = sum(m.startswith("queued-") for m in receivers.slack_at)
    assert sent == received == QUEUED_ALERTS, (sent, received)

    alert = store.alerts.list(limit=1)[0]
    payload = slack.slack_message(alert, affected_groups=[], dashboard_url=settings.dashboard_url)
    started = time.perf_counter()
    for _ in range(QUEUED_ALERTS):
        request = urllib.request.Request(receivers.webhook, data=json.dumps(payload).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
    bare = time.perf_counter() - started
    print(f"outbox after Slack comes back, {QUEUED_ALERTS:,} queued: {QUEUED_ALERTS / elapsed:,.0f} deliveries/s "
          f"({elapsed:.2f} s; bare POSTs {QUEUED_ALERTS / bare:,.0f}/s, the outbox costs {elapsed / bare:.1f}x)")


def main() -> None:
    logging.basicConfig(level=logging.ERROR)  # the 1,000 retries are expected, not news
    receivers = Receivers()
    settings = load_settings(slack_webhook_url=receivers.webhook, smtp_host="127.0.0.1", smtp_port=receivers.smtp.port,
                             smtp_starttls=False, smtp_from="fairwatch@example.org",
                             alert_recipients={"ml_lead": "ml@example.org", "cto": "cto@example.org"})
    with tempfile.TemporaryDirectory() as folder:
        try:
            for phase in (latency, throughput):  # each on a store of its own
                store = SqliteStore(Path(folder) / f"{phase.__name__}.db")
                store.ensure_schema()
                phase(store, settings, receivers)
                store.close()
        finally:
            receivers.close()

if __name__ == "__main__":
    main()
