"""`ccshortlink sms preview`: the exact text an SMS would carry, its encoding and its parts."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from ccshortlink.cli.commands import load
from ccshortlink.cli.exits import Exit
from ccshortlink.config.settings import Config
from ccshortlink.config.sms import card_templates
from ccshortlink.config.smstexts import reply_texts
from ccshortlink.core.agents import AgentDirectory
from ccshortlink.core.carriertext import SmsCost, sms_cost
from ccshortlink.core.links import link_url, new_code
from ccshortlink.core.policy import CustomerNumber, NumberRejected, normalise_number
from ccshortlink.core.vocab import SmsKind

ANSWERS = [kind.value for kind in (SmsKind.OPT_OUT_CONFIRMATION, SmsKind.OPT_IN_CONFIRMATION,
                                   SmsKind.HELP_REPLY)]


def cmd_sms_preview(args: argparse.Namespace) -> int:
    config, agents = load(args.config)
    if not args.agent and not args.reply:
        print("ccshortlink: say whose card (--agent ID) or which answer (--reply KIND)",
              file=sys.stderr)
        return Exit.USAGE
    customer = normalise_number(args.to, config.policy)
    if isinstance(customer, NumberRejected):
        print(f"ccshortlink: {args.to!r} gets no SMS: {customer.reason}", file=sys.stderr)
        return Exit.USAGE
    preview = (_answer(config, customer, args.reply, args.language) if args.reply
               else _card(config, agents, customer, args.agent, args.language))
    if isinstance(preview, str):
        print(f"ccshortlink: {preview}", file=sys.stderr)
        return Exit.USAGE
    print(json.dumps(preview, ensure_ascii=False, indent=2) if args.json else _render(preview))
    return Exit.OK


def _card(config: Config, agents: AgentDirectory, customer: CustomerNumber, agent_id: str,
          language: str | None) -> dict[str, Any] | str:
    agent = agents.by_id(agent_id)
    if agent is None:
        return f"unknown agent {agent_id!r}"
    templates = card_templates(config.sms)
    language = language or templates.language_for(agent, customer.region)
    if language not in templates.languages:
        return f"no template for {language!r} (there are: {', '.join(templates.languages)})"
    from ccshortlink.store.pairlink import live_code  # the database only when it is asked

    code = live_code(config.db, agent.id, customer.e164, time.time())
    link = "the live link of this agent and number, reused"
    if code is None:
        code, link = new_code(), "a new link: its code is random, this one shows its length"
    url = link_url(config.web.public_url, code)
    text = templates.render_language(language, agent, url, code)
    return _facts(customer, "card", language, text) | {"link": url, "link_note": link}


def _answer(config: Config, customer: CustomerNumber, kind_name: str,
            language: str | None) -> dict[str, Any] | str:
    kind = SmsKind(kind_name)
    texts = reply_texts(config.sms.carrier, config.sms.default_language,
                        company=config.web.company, hotline=config.web.hotline)
    language = language or texts.language_for(kind, customer.region)
    if language not in texts.languages(kind):
        return f"no {kind.value} text for {language!r} (there are: " \
               f"{', '.join(texts.languages(kind))})"
    return _facts(customer, kind.value, language, texts.render(kind, language))


def _facts(customer: CustomerNumber, kind: str, language: str, text: str) -> dict[str, Any]:
    cost = sms_cost(text)
    return {"to": customer.e164, "kind": kind, "language": language, "text": text,
            "encoding": cost.encoding, "length": cost.units, "parts": cost.parts,
            "capacity": _capacity(cost)}


def _capacity(cost: SmsCost) -> str:
    unit = "septets" if cost.encoding.startswith("GSM") else "characters"
    if cost.parts == 1:
        return f"{cost.units} of {cost.single_capacity} {unit}"
    return f"{cost.units} {unit}, {cost.part_capacity} per part"


def _render(preview: dict[str, Any]) -> str:
    parts = "1 part" if preview["parts"] == 1 else f"{preview['parts']} parts"
    lines = [f"To:        {preview['to']}", f"SMS:       {preview['kind']}",
             f"Language:  {preview['language']}"]
    if "link" in preview:
        lines.append(f"Link:      {preview['link']} ({preview['link_note']})")
    lines += [f"Encoding:  {preview['encoding']}",
              f"Costs:     {parts} ({preview['capacity']})", "", preview["text"]]
    return "\n".join(lines)
