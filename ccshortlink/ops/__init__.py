"""Running in production: structured logs with numbers masked, Prometheus metrics, systemd."""
