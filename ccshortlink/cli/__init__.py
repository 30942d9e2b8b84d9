"""The command line: parse arguments, run one command, map errors to exit codes."""

from ccshortlink.cli.main import main

__all__ = ["main"]
