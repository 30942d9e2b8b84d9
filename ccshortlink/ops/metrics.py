"""Prometheus counters and gauges on a registry owned by one Metrics object (no globals)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Info, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ccshortlink import __version__
from ccshortlink.core.vocab import SmsStatus

VISIT_KINDS = ("open", "call", "vcard")
SMS_STATUSES = tuple(SmsStatus)  # queued, submitting, submitted, delivered, failed, expired
LINK_STATES = ("live", "expired", "revoked")
DEFAULT_PBX = "default"  # the `pbx` label of the AMI gauge of a plain [ami] table


class Metrics:
    """The daemon's metrics; the daemon and the web layer increment, /metrics renders."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, pbxs: Sequence[str] = (DEFAULT_PBX,)) -> None:
        # A private registry: tests and several daemons in one process never share counts.
        self.registry = CollectorRegistry(auto_describe=True)
        self.calls_seen = Counter(
            "ccshortlink_calls_seen", "Calls whose first AMI event was seen",
            registry=self.registry)
        self.calls_ended = Counter(
            "ccshortlink_calls_ended", "Calls judged ended (hangup, queue completion or command)",
            registry=self.registry)
        self.sms = Counter(
            "ccshortlink_sms", "SMS outcomes (queued, submitted, delivered, failed, retried...)",
            ["status"], registry=self.registry)
        self.visits = Counter(
            "ccshortlink_visits", "Counted card visits by kind (open, call, vcard)",
            ["kind"], registry=self.registry)
        self.ratings = Counter(
            "ccshortlink_ratings", "Ratings submitted or changed on card pages",
            registry=self.registry)
        self.outbox = Gauge(
            "ccshortlink_outbox_messages", "SMS rows in the outbox by status, read at scrape time",
            ["status"], registry=self.registry)
        self.decisions_dropped = Counter(
            "ccshortlink_decisions_dropped",
            "Finished calls refused undecided: the database failed and the backlog was full",
            registry=self.registry)
        self.decisions_waiting = Gauge(
            "ccshortlink_decisions_waiting",
            "Finished calls kept in memory until the database takes their decision",
            registry=self.registry)
        # Peers: 1 while logged in to the PBX's AMI / bound to the SMSC, 0 otherwise.
        self.ami_connected = Gauge(
            "ccshortlink_ami_connected", "1 while the AMI session to the PBX is logged in",
            ["pbx"], registry=self.registry)
        self.smpp_connected = Gauge(
            "ccshortlink_smpp_connected", "1 while the SMPP bind to the SMSC is up",
            registry=self.registry)
        self.outbox_oldest_due = Gauge(
            "ccshortlink_outbox_oldest_due_seconds",
            "Age in seconds of the oldest SMS that is due and not sent yet (0: none waiting)",
            registry=self.registry)
        self.links = Gauge(
            "ccshortlink_links", "Short links by state (live, expired, revoked), read at scrape",
            ["state"], registry=self.registry)
        self.callbacks = Counter(
            "ccshortlink_callbacks", "Call-backs by how they ended (done, agent_missed,"
            " customer_missed, expired, failed, refused)", ["outcome"], registry=self.registry)
        self.callbacks_waiting = Gauge(
            "ccshortlink_callbacks_waiting", "Call-backs waiting for a free agent or the PBX",
            registry=self.registry)
        self.build = Info(
            "ccshortlink_build", "The running ccshortlink's version", registry=self.registry)
        self.build.info({"version": __version__})
        # Export zeros from the start so rate() and alerts work before the first event.
        for pbx in pbxs:  # one series per PBX, each 0 until its AMI login
            self.ami_connected.labels(pbx=pbx).set(0)
        self.smpp_connected.set(0)
        for state in LINK_STATES:
            self.links.labels(state=state).set(0)
        for kind in VISIT_KINDS:
            self.visits.labels(kind=kind)
        for status in SMS_STATUSES:
            self.outbox.labels(status=status).set(0)
            self.sms.labels(status=status)  # the failure-ratio alert divides by these

    def set_outbox(self, counts: Mapping[str, int]) -> None:
        """Replace the outbox gauge with the store's current counts."""
        for status in set(SMS_STATUSES) | set(counts):
            self.outbox.labels(status=status).set(counts.get(status, 0))

    def set_outbox_age(self, oldest_due_at: float | None, now: float) -> None:
        """How long the oldest due, unsent SMS has waited (`oldest_due_at` None: none)."""
        self.outbox_oldest_due.set(0 if oldest_due_at is None else max(0.0, now - oldest_due_at))

    def set_links(self, counts: Mapping[str, int]) -> None:
        """Replace the links gauge with the store's current counts."""
        for state in LINK_STATES:
            self.links.labels(state=state).set(counts.get(state, 0))

    def exposition(self) -> bytes:
        """The Prometheus text format of everything in this registry."""
        return generate_latest(self.registry)
