"""Run the ccshortlink command line: python -m ccshortlink."""

from ccshortlink.cli import main

raise SystemExit(main())
