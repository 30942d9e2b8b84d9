"""What `check-config` accepts but warns about: example secrets, an unwritable database folder,
links that are not https. Reads the file system, never creates anything."""

from __future__ import annotations

import os
from pathlib import Path

from ccshortlink.config.carriercheck import carrier_report
from ccshortlink.config.settings import Config
from ccshortlink.config.templatecheck import describe, template_costs

# The placeholders shipped in etc/ and the first words people type; compared case-insensitively.
EXAMPLE_SECRETS = frozenset(["change-me", "changeme", "change_me", "secret", "password",
                             "s3cret", "passw0rd", "admin", "example", "test", "123456"])
MIN_TOKEN = 16  # the API sends SMS on the company's bill: a token must not be guessable


def check_report(config: Config) -> tuple[list[str], list[str]]:
    """check-config's lines about each template's cost, and every warning."""
    costs = template_costs(config.sms.templates, config.web.public_url,
                           signatures=config.sms.carrier.signatures,
                           opt_out_hints=config.sms.carrier.opt_out_hints)
    lines, template_warnings = describe(costs, config.sms.default_language)
    reply_lines, carrier_warnings = carrier_report(config.sms, config.web,
                                                   missed_call=config.policy.missed_call_sms)
    return lines + reply_lines, config_warnings(config) + template_warnings + carrier_warnings


def config_warnings(config: Config) -> list[str]:
    """Each warning names the setting and why it matters; secrets themselves are never shown."""
    warnings = []
    several = len(config.pbxs) > 1
    amis = [(f'[ami "{pbx.name}"]' if several else "[ami]", pbx) for pbx in config.pbxs]
    for name, value in (*((f"{label} secret", pbx.secret) for label, pbx in amis),
                        ("[smpp] password", config.smpp.password),
                        ("[web] api_token", config.web.api_token)):
        if value and value.strip().lower() in EXAMPLE_SECRETS:
            warnings.append(f"{name} is still an example value: set a real one")
    token = config.web.api_token
    if token and token.strip().lower() not in EXAMPLE_SECRETS and len(token) < MIN_TOKEN:
        warnings.append(f"[web] api_token is {len(token)} characters: use {MIN_TOKEN} or more "
                        "random ones (e.g. `openssl rand -hex 16`)")
    for section, tls in (*((label, pbx.tls) for label, pbx in amis),
                         ("[smpp]", config.smpp.tls)):
        if tls is not None and not tls.verify:
            warnings.append(f"{section} tls_verify = false: the peer's certificate is not "
                            "checked, so whoever is on the path can pose as it and read the login")
    problem = None if config.db.url else database_folder_problem(config.database_path)
    if problem:
        warnings.append(f"[database] path {config.database_path}: {problem}")
    if not config.web.public_url.startswith("https://"):
        warnings.append(f"[web] public_url {config.web.public_url!r} is not https: customers' "
                        "phones open the card over plain http")
    callback = config.callback
    if callback.enabled and not (callback.caller_id or config.web.hotline):
        warnings.append("[callback] caller_id and [web] hotline are both empty: a call-back "
                        "shows the customer whatever caller ID the outbound route sets")
    return warnings


def database_folder_problem(db: Path) -> str | None:
    """Why the daemon could not create or write the database at `db`, or None.

    Checked without creating anything: the nearest existing folder up the path must be a
    writable folder (SQLite writes -wal and -shm files beside the database).
    """
    try:
        if db.is_dir():
            return "is a directory, not a database file"
        if db.exists() and not os.access(db, os.R_OK | os.W_OK):
            return "the database file is not readable and writable by this user"
        folder = db.parent
        while not folder.exists():
            if folder.parent == folder:
                return "no existing folder on the path"
            folder = folder.parent
        if not folder.is_dir():
            return f"{folder} is not a folder"
        if not os.access(folder, os.W_OK | os.X_OK):
            what = "the folder" if folder == db.parent else f"{folder} (to create the folder)"
            return f"{what} is not writable by this user"
    except OSError as exc:
        return f"cannot be checked: {exc.strerror or exc}"
    return None
