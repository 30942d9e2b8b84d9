"""Phone numbers and addresses kept from being seen: masking in logs, anonymising at rest."""

from __future__ import annotations

import ipaddress
import re

# What is never a phone number although it is a long run of digits, tried first at each
# position so the number rule below never sees it: ISO dates and times, IPv4 addresses (each
# octet 0-255 without leading zeros) and Asterisk's uniqueid/linkedid (epoch seconds, a dot,
# a sequence). A number written exactly like one of these is shown; people do not.
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_KEEP = (
    r"(?<!\d)(?:19|20)\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
    r"(?:[T ]\d\d:\d\d(?::\d\d(?:[.,]\d+)?)?)?(?![\d:])(?![-.]\d)"
    rf"|(?<!\d)(?:{_OCTET}\.){{3}}{_OCTET}(?!\.?\d)"
    r"|(?<!\d)1?\d{9}\.\d{1,6}(?!\.?\d)"
)
# A phone number as people write it: digit groups joined by one space, dash or dot, or by
# brackets, with an optional leading "+" or "(+": 138 0013 8000, (+86) 138-0013-8000.
_CANDIDATE = r"(?:\+ ?|\(\+)?\d+(?:(?:\)[ .-]?|[ .-]\(?|\()\d+)*"
_SCAN = re.compile(f"(?P<keep>{_KEEP})|{_CANDIDATE}")
_DIGIT = re.compile(r"\d")
MIN_DIGITS = 7  # fewer digits than this in one group run is a count, a port or a code
def mask_number(number: str) -> str:
    """Keep the country/operator prefix and the last four digits: +86138****8000."""
    digits = number.lstrip("+")
    plus = "+" if number.startswith("+") else ""
    if len(digits) <= 8:
        return plus + "*" * (len(digits) - 2) + digits[-2:]
    keep_head = min(5, len(digits) - 8)  # at least four digits always hidden
    return plus + digits[:keep_head] + "*" * (len(digits) - keep_head - 4) + digits[-4:]


def _mask_match(match: re.Match[str]) -> str:
    found = match.group(0)
    if match.group("keep") is not None:
        return found
    digits = _DIGIT.findall(found)
    if len(digits) < MIN_DIGITS:
        return found
    # Mask the digits as one number, then put them back in the writer's layout.
    masked = iter(mask_number("".join(digits)))
    return _DIGIT.sub(lambda _: next(masked), found)


def mask_text(text: str) -> str:
    """Mask every phone-number-like run inside free text, spaced, dashed or bracketed."""
    return _SCAN.sub(_mask_match, text)


def clip(text: str, limit: int) -> str:
    """Free text masked, then cut to `limit` characters: cut first, a number's middle
    digits would pass as its "last four"."""
    return mask_text(text)[:limit]


def anonymise_number(value: str) -> str:
    """'+8613800138000' → '+86138****8000'; idempotent, and text without a number is unchanged.

    Masking digit runs (rather than every value) leaves extensions and placeholders such as
    '1002' or 'anonymous' in skipped decisions readable: they identify nobody.
    """
    return mask_text(value)


def ip_address_of(remote: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The peer's address as an address (IPv4-mapped IPv6 as IPv4), or None if it is not one."""
    if not remote:
        return None
    try:
        address = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def anonymise_address(remote: str | None) -> str:
    """The network a visit came from, never the address: IPv4 /24, IPv6 /48."""
    address = ip_address_of(remote)
    if address is None:
        return ""
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)
