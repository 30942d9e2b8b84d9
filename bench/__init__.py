"""Benchmarks of the whole ccshortlink pipeline on 127.0.0.1: `python -m bench` runs them all."""
