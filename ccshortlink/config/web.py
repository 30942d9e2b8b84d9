"""The [web] section: where the card site listens and the address customers see."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from ccshortlink.config.reader import Reader
from ccshortlink.config.rules import check_networks, parse_listen


@dataclass(frozen=True)
class WebConfig:
    host: str
    port: int
    public_url: str
    hotline: str = ""
    api_token: str = ""
    company: str = ""
    # Peers (addresses or CIDR networks) whose X-Forwarded-For is believed; none by default.
    trusted_proxies: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"WebConfig(host={self.host!r}, port={self.port}, public_url={self.public_url!r})"


def read_web(web: Reader) -> WebConfig:
    host, port = parse_listen(web.text("listen", "127.0.0.1:8080"), web.problems)
    public_url = web.text("public_url", required=True).rstrip("/")
    parts = urlsplit(public_url)
    if public_url and (parts.scheme not in ("http", "https") or not parts.netloc):
        web.problems.append(f"[web] public_url must be an http(s) URL, got {public_url!r}")
    web_cfg = WebConfig(
        host=host, port=port, public_url=public_url,
        hotline=web.text("hotline", ""), api_token=web.text("api_token", ""),
        company=web.text("company", ""),
        trusted_proxies=web.words("trusted_proxies", ()),
    )
    check_networks(web_cfg.trusted_proxies, web.problems)
    return web_cfg
