"""The SMPP adapter: one I/O thread owns the only smpplib connection; submit, receipts, MO."""
