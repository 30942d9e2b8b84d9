"""Use cases over ports: sending, the outbox, replies, housekeeping; no adapter by name."""
