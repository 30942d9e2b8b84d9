"""SQL for data retention: delete or mask what is older than the cutoff."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from ccshortlink.store.base import StoreBase


class RetentionStore(StoreBase):
    """The daily retention job."""

    # --- retention ---------------------------------------------------------------------

    async def apply_retention(self, cutoff: float, now: float,
                              anonymise: Callable[[str], str]) -> dict[str, int]:
        """Delete visits, SMS events and parts from before `cutoff`; anonymise older links,
        decisions, SMS and replies (numbers through `anonymise`; the texts we sent kept, those
        customers typed emptied) so counts still add up.

        SMS still waiting to be sent keep their destination and parts however old they are,
        and a live link keeps its number until it expires (the pair reuses it). Returns row
        counts per table; one transaction.
        """
        settled = "status NOT IN ('queued', 'submitting')"

        def work(db: sqlite3.Connection) -> dict[str, int]:
            db.create_function("ccshortlink_anonymise", 1, anonymise, deterministic=True)
            visits = db.execute("DELETE FROM visits WHERE at < ?", (cutoff,))
            events = db.execute("DELETE FROM sms_events WHERE at < ?", (cutoff,))
            parts = db.execute(
                "DELETE FROM sms_parts WHERE sms_id IN (SELECT id FROM sms WHERE created_at < ?"
                f" AND {settled})", (cutoff,))
            links = db.execute(
                "UPDATE links SET customer_number = ccshortlink_anonymise(customer_number)"
                " WHERE created_at < ? AND (expires_at <= ? OR revoked_at IS NOT NULL)"
                " AND customer_number != ccshortlink_anonymise(customer_number)", (cutoff, now))
            decisions = db.execute(
                "UPDATE decisions SET customer_number = ccshortlink_anonymise(customer_number)"
                " WHERE decided_at < ?"
                " AND customer_number != ccshortlink_anonymise(customer_number)",
                (cutoff,))
            sms = db.execute(
                "UPDATE sms SET destination = ccshortlink_anonymise(destination)"
                f" WHERE created_at < ? AND {settled}"
                " AND destination != ccshortlink_anonymise(destination)", (cutoff,))
            # What a customer typed is theirs: the text goes, the kind stays for the counts.
            replies = db.execute(
                "UPDATE replies SET customer_number = ccshortlink_anonymise(customer_number),"
                " text = '' WHERE received_at < ?"
                " AND (customer_number != ccshortlink_anonymise(customer_number) OR text != '')",
                (cutoff,))
            return {"visits_deleted": visits.rowcount, "sms_events_deleted": events.rowcount,
                    "sms_parts_deleted": parts.rowcount, "links_anonymised": links.rowcount,
                    "decisions_anonymised": decisions.rowcount, "sms_anonymised": sms.rowcount,
                    "replies_anonymised": replies.rowcount}

        # Possibly many rows: on the connection's thread, so the loop is not held up.
        return await self._write_in_thread(work)
