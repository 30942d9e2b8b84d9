"""Short-code minting, link URLs and status, and SMS text rendering; pure, no I/O."""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Mapping

from jinja2 import TemplateError

from ccshortlink.core.agents import Agent
from ccshortlink.core.carriertext import (
    DEFAULT_OPT_OUT_HINTS,
    closest_language,
    for_language,
    sign,
)
from ccshortlink.core.describe import describe
from ccshortlink.core.sandbox import BoundedEnvironment, render_bounded
from ccshortlink.core.vocab import LinkStatus

# No 0/O/o, 1/l/I/i: a code read aloud or retyped from a screenshot stays unambiguous.
ALPHABET = "23456789abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_LENGTH = 9
CODE_BITS = CODE_LENGTH * math.log2(len(ALPHABET))  # ~52 bits: unguessable, not enumerable


def link_status(expires_at: float, revoked_at: float | None, now: float) -> LinkStatus:
    """The one rule for a link: revoked wins, then its expiry; the instant of expiry is past."""
    if revoked_at is not None:
        return LinkStatus.REVOKED
    return LinkStatus.EXPIRED if expires_at <= now else LinkStatus.LIVE


def new_code(choice: Callable[[str], str] = secrets.choice) -> str:
    """A fresh random code; `choice` is injectable so tests can fix it."""
    return "".join(choice(ALPHABET) for _ in range(CODE_LENGTH))


def is_code(text: str) -> bool:
    """Cheap syntactic check before touching the database."""
    return len(text) == CODE_LENGTH and all(c in ALPHABET for c in text)


REGION_LANGUAGE = {"CN": "zh-CN", "HK": "zh-HK", "MO": "zh-HK", "TW": "zh-TW", "SG": "zh-CN",
                    "US": "en", "GB": "en", "AU": "en", "CA": "en", "NZ": "en", "IE": "en"}


def link_url(public_url: str, code: str) -> str:
    return f"{public_url.rstrip('/')}/{code}"


class SmsTemplates:
    """The configured SMS texts, compiled once; one per language, each signed as it is sent."""

    def __init__(self, templates: dict[str, str], default_language: str, *,
                 signatures: Mapping[str, str] | None = None,
                 opt_out_hints: Mapping[str, str] | None = None) -> None:
        # Sandboxed and bounded: the template comes from a config file, but it must never reach
        # Python, loop without end or grow without limit, at check time or at send time.
        env = BoundedEnvironment()
        self._compiled = {lang: env.from_string(text) for lang, text in templates.items()}
        self.default_language = default_language
        self.signatures = dict(signatures or {})  # language (or "*" for all) -> signature
        self.opt_out_hints = dict(DEFAULT_OPT_OUT_HINTS if opt_out_hints is None
                                  else opt_out_hints)

    @property
    def languages(self) -> list[str]:
        return sorted(self._compiled)

    def language_for(self, agent: Agent, customer_region: str = "") -> str:
        """The agent's language if configured, else the customer's country's, else the default."""
        wanted = agent.language or REGION_LANGUAGE.get(customer_region, "")
        return closest_language(wanted, self._compiled, self.default_language)

    def render(self, agent: Agent, url: str, code: str, customer_region: str = "") -> str:
        return self.render_language(self.language_for(agent, customer_region), agent, url, code)

    def render_language(self, language: str, agent: Agent, url: str, code: str) -> str:
        """One language's text exactly as it is sent: the signature first."""
        text = render_bounded(self._compiled[language], agent=agent, url=url, code=code,
                              opt_out_hint=for_language(self.opt_out_hints, language))
        return sign(" ".join(text.split()), for_language(self.signatures, language))


SAMPLE_PUBLIC_URL = "https://cs.example.com"
SAMPLE_CODE = "a2B3c4D5e"  # CODE_LENGTH characters of ALPHABET


def sample_agent(language: str) -> Agent:
    """A typical agent for the language: a 3-character Chinese name or a short Latin one."""
    name = "王小梅" if language.startswith("zh") else "Alex Chen"
    return Agent(id="CS1001", extensions=("1001",), name=name, phone="+862088880000",
                 language=language)


def check_templates(templates: dict[str, str], default_language: str, *,
                    public_url: str = SAMPLE_PUBLIC_URL) -> list[str]:
    """Problems a template would only show at the first SMS: found at start instead.

    Each template is rendered with a typical agent and link in the bounded sandbox; an error,
    a bound reached, or a text without the link is a problem naming the template.
    """
    problems = []
    compiled: dict[str, SmsTemplates] = {}
    for language, text in templates.items():
        try:
            compiled[language] = SmsTemplates({language: text}, language)
        except (TemplateError, RecursionError, MemoryError) as exc:
            problems.append(f"[sms] template for {language!r} does not compile: "
                            f"{describe(exc)}")
    url = link_url(public_url or SAMPLE_PUBLIC_URL, SAMPLE_CODE)
    for language, one in compiled.items():
        try:
            text = one.render_language(language, sample_agent(language), url, SAMPLE_CODE)
        except Exception as exc:  # anything a template raises is a config problem
            problems.append(f"[sms] template for {language!r} fails to render: "
                            f"{describe(exc)}")
            continue
        if url not in text:
            problems.append(f"[sms] template for {language!r} renders without the link "
                            f"({{{{ url }}}}): {text[:80]!r}")
    return problems
