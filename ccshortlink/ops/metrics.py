"""Prometheus counters and gauges on a registry owned by one Metrics object (no globals)."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ccshortlink.core.vocab import SmsStatus

VISIT_KINDS = ("open", "call", "vcard")
SMS_STATUSES = tuple(SmsStatus)  # queued, submitting, submitted, delivered, failed, expired


class Metrics:
    """The daemon's metrics; the daemon and the web layer increment, /metrics renders."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
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
        # Export zeros from the start so rate() and alerts work before the first event.
        for kind in VISIT_KINDS:
            self.visits.labels(kind=kind)
        for status in SMS_STATUSES:
            self.outbox.labels(status=status).set(0)

    def set_outbox(self, counts: Mapping[str, int]) -> None:
        """Replace the outbox gauge with the store's current counts."""
        for status in set(SMS_STATUSES) | set(counts):
            self.outbox.labels(status=status).set(counts.get(status, 0))

    def exposition(self) -> bytes:
        """The Prometheus text format of everything in this registry."""
        return generate_latest(self.registry)
