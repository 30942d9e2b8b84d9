"""Short-code minting, link URLs and SMS text rendering; pure, no I/O."""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from ccshortlink.agents import Agent

# No 0/O/o, 1/l/I/i: a code read aloud or retyped from a screenshot stays unambiguous.
ALPHABET = "23456789abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_LENGTH = 9
CODE_BITS = CODE_LENGTH * math.log2(len(ALPHABET))  # ~52 bits: unguessable, not enumerable


def new_code(choice: Callable[[str], str] = secrets.choice) -> str:
    """A fresh random code; `choice` is injectable so tests can fix it."""
    return "".join(choice(ALPHABET) for _ in range(CODE_LENGTH))


def is_code(text: str) -> bool:
    """Cheap syntactic check before touching the database."""
    return len(text) == CODE_LENGTH and all(c in ALPHABET for c in text)


_REGION_LANGUAGE = {"CN": "zh-CN", "HK": "zh-HK", "MO": "zh-HK", "TW": "zh-TW", "SG": "zh-CN",
                    "US": "en", "GB": "en", "AU": "en", "CA": "en", "NZ": "en", "IE": "en"}


def link_url(public_url: str, code: str) -> str:
    return f"{public_url.rstrip('/')}/{code}"


class SmsTemplates:
    """The configured SMS texts, compiled once; one per language."""

    def __init__(self, templates: dict[str, str], default_language: str) -> None:
        # Sandboxed: the template comes from a config file, but it must never reach Python.
        env = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined,
                                   keep_trailing_newline=False)
        self._compiled = {lang: env.from_string(text) for lang, text in templates.items()}
        self.default_language = default_language

    def language_for(self, agent: Agent, customer_region: str = "") -> str:
        """The agent's language if configured, else the customer's country's, else the default."""
        wanted = agent.language or _REGION_LANGUAGE.get(customer_region, "")
        if wanted in self._compiled:
            return wanted
        base = wanted.split("-", 1)[0]
        for lang in self._compiled:
            if base and lang.split("-", 1)[0] == base:
                return lang
        return self.default_language

    def render(self, agent: Agent, url: str, code: str, customer_region: str = "") -> str:
        template = self._compiled[self.language_for(agent, customer_region)]
        return " ".join(template.render(agent=agent, url=url, code=code).split())


def check_templates(templates: dict[str, str], default_language: str) -> list[str]:
    """Problems a template would only show at the first SMS: found at start instead."""
    problems = []
    sample = Agent(id="CS0000", extensions=("1000",), name="Sample", phone="+861000000000")
    try:
        compiled = SmsTemplates(templates, default_language)
    except TemplateError as exc:
        return [f"[sms] template does not compile: {exc}"]
    for lang in templates:
        try:
            compiled._compiled[lang].render(agent=sample, url="https://x/abc", code="abc")
        except TemplateError as exc:
            problems.append(f"[sms] template for {lang!r} fails to render: {exc}")
    return problems
