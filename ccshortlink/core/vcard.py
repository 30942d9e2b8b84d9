"""Render an agent as a vCard 3.0 contact (pure: values in, text out)."""

from __future__ import annotations

import base64
import re

from ccshortlink.core.agents import Agent

# vCard 3.0 (RFC 2426) imports most reliably on both iOS and Android; 4.0 still trips
# some Android contact apps.
_FOLD_AT = 75  # octets per physical line, not counting CRLF (RFC 2425 section 5.8.1)
_PHONE_JUNK = re.compile(r"[^0-9+*#,;=a-z]")


def escape_text(value: str) -> str:
    """Escape a TEXT value: backslash, comma, semicolon and newlines (RFC 2426 section 4)."""
    value = value.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;")
    return value.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n")


def fold(line: str) -> str:
    """Fold one content line at 75 octets without splitting a UTF-8 character."""
    encoded = line.encode("utf-8")
    if len(encoded) <= _FOLD_AT:
        return line
    pieces: list[str] = []
    start, limit = 0, _FOLD_AT
    while start < len(encoded):
        end = min(start + limit, len(encoded))
        # step back off UTF-8 continuation bytes (10xxxxxx) so characters stay whole
        while end < len(encoded) and encoded[end] & 0xC0 == 0x80:
            end -= 1
        pieces.append(encoded[start:end].decode("utf-8"))
        start = end
        limit = _FOLD_AT - 1  # continuation lines begin with one space
    return "\r\n ".join(pieces)


def name_parts(name: str) -> tuple[str, str]:
    """(family, given): 'Alice Wang' -> ('Wang', 'Alice'); '王芳' -> ('王', '芳')."""
    words = name.split()
    if len(words) > 1:
        return words[-1], " ".join(words[:-1])
    if name and not name.isascii():
        return name[:1], name[1:]  # CJK: the family name is the first character
    return name, ""


def dial_string(phone: str) -> str:
    """What contact apps dial: '+86 20 8888-0000;ext=1001' -> '+862088880000,1001'."""
    compact = _PHONE_JUNK.sub("", phone.lower())
    number, _, extension = compact.partition(";ext=")
    number = number.split(";", 1)[0]
    return f"{number},{extension}" if extension else number


def photo_type(image: bytes) -> str | None:
    """'PNG' or 'JPEG' by magic number; other formats are not inlined."""
    if image.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if image.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    return None


def render_vcard(agent: Agent, *, company: str, note: str, photo: bytes | None = None) -> str:
    """The whole vCard, CRLF line endings, folded; `photo` is inlined when PNG or JPEG."""
    family, given = name_parts(agent.name)
    lines = [
        "BEGIN:VCARD",
        "VERSION:3.0",
        f"N:{escape_text(family)};{escape_text(given)};;;",
        f"FN:{escape_text(agent.name)}",
    ]
    if company:
        lines.append(f"ORG:{escape_text(company)}")
    if agent.title:
        lines.append(f"TITLE:{escape_text(agent.title)}")
    lines.append(f"TEL;TYPE=WORK,VOICE:{dial_string(agent.phone)}")
    lines.append(f"NOTE:{escape_text(note)}")
    kind = photo_type(photo) if photo else None
    if photo and kind:
        lines.append(f"PHOTO;ENCODING=b;TYPE={kind}:{base64.b64encode(photo).decode('ascii')}")
    lines.append("END:VCARD")
    return "".join(fold(line) + "\r\n" for line in lines)


def vcard_filename(agent: Agent) -> str:
    """An ASCII-safe file name such as 'CS1001.vcf' (the CS ID, never the customer)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", agent.id) or "contact"
    return f"{safe}.vcf"
