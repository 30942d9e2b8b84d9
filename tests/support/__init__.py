"""Helpers the tests share: real peers, recorded calls, sites on disk."""
