"""Each adapter against its real peer: TCP, a real SQLite file, the npm SMSC, a browser."""
