"""All SQL lives in this package: links, outbox, decisions, visits, ratings, opt-outs."""

from __future__ import annotations

from ccshortlink.store.base import SCHEMA_VERSION, StoreError, is_db_fault
from ccshortlink.store.card import CardStore
from ccshortlink.store.links import LinkStore
from ccshortlink.store.outbox import ClaimedSms, OutboxStore
from ccshortlink.store.records import (
    AgentLiveStats,
    CardRequest,
    CardResult,
    DecisionRecord,
    IssuedLink,
    LinkView,
    OutboxSms,
    RatingView,
    ReceiptRecord,
    SmsDraft,
    SubmittedSms,
)
from ccshortlink.store.retention import RetentionStore

__all__ = [
    "SCHEMA_VERSION", "AgentLiveStats", "CardRequest", "CardResult", "ClaimedSms",
    "DecisionRecord", "IssuedLink", "LinkView", "OutboxSms", "RatingView", "ReceiptRecord",
    "SmsDraft", "Store", "StoreError", "SubmittedSms", "is_db_fault",
]


class Store(LinkStore, OutboxStore, CardStore, RetentionStore):
    """The one SQLite connection and every use case, one transaction each."""
