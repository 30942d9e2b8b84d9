"""The `ccshortlink` command: turns errors into clear messages and exit codes (78 = config)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ccshortlink.cli.exits import Exit
from ccshortlink.cli.parser import build_parser
from ccshortlink.config.problems import ProblemsError
from ccshortlink.config.settings import ConfigError
from ccshortlink.store import StoreError, is_db_fault

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"ccshortlink: configuration error in {exc}", file=sys.stderr)
        return Exit.CONFIG
    except StoreError as exc:
        print(f"ccshortlink: database error: {exc}", file=sys.stderr)
        return Exit.CONFIG
    except ProblemsError as exc:  # the agents file, read by a command after the config
        print(f"ccshortlink: {exc}", file=sys.stderr)
        return Exit.CONFIG
    except KeyboardInterrupt:
        return Exit.INTERRUPTED
    except BrokenPipeError:  # `ccshortlink trace ... | head`: the reader had enough
        return Exit.OK
    except Exception as exc:
        if not is_db_fault(exc):
            raise
        # Locked by another process or a full disk: nothing was changed, try again later.
        print(f"ccshortlink: database unavailable ({exc}): nothing was changed, try again",
              file=sys.stderr)
        return Exit.TEMPFAIL


if __name__ == "__main__":
    raise SystemExit(main())
