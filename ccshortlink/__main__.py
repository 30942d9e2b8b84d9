"""Run the ccshortlink command line: python -m ccshortlink."""

from ccshortlink.cli.main import main

raise SystemExit(main())
