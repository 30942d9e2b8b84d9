"""All SQL lives in this package: links, outbox, decisions, visits, ratings, opt-outs."""

from __future__ import annotations

from ccshortlink.store.base import SCHEMA_VERSION
from ccshortlink.store.callbacks import CallbackStore
from ccshortlink.store.card import CardStore
from ccshortlink.store.errors import DatabaseError, StoreError, is_db_fault, is_transient
from ccshortlink.store.gauges import GaugeStore
from ccshortlink.store.linkadmin import LinkAdminStore
from ccshortlink.store.links import LinkStore
from ccshortlink.store.outbox import ClaimedSms, OutboxStore
from ccshortlink.store.replies import ReplyRows
from ccshortlink.store.retention import RetentionStore

__all__ = ["SCHEMA_VERSION", "ClaimedSms", "DatabaseError", "Store", "StoreError", "is_db_fault",
           "is_transient"]


class Store(LinkStore, OutboxStore, CardStore, RetentionStore, LinkAdminStore, GaugeStore,
            ReplyRows, CallbackStore):
    """The one SQLite connection and every use case, one transaction each."""
