"""The Asterisk Manager Interface adapter: the only panoramisk user; login, keepalive, events."""
