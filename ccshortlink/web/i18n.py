"""The card's UI strings in zh-CN and en, and the choice of language for one request."""

from __future__ import annotations

SUPPORTED = ("zh-CN", "en")
DEFAULT = "zh-CN"

# One table, one key per string; a missing key in any language is a test failure.
STRINGS: dict[str, dict[str, str]] = {
    "zh-CN": {
        "page_title": "{name} · 专属客服",
        "cs_id": "工号",
        "call_back": "一键回拨",
        "save_contact": "保存到通讯录",
        "greeting": "听听{name}的问候",
        "satisfaction": "满意度",
        "votes": "{count} 人评价",
        "no_votes": "暂无评分",
        "calls_handled": "服务通话",
        "customers_served": "服务客户",
        "service_record": "服务记录",
        "reviews": "客户评价",
        "anonymous": "匿名客户",
        "rate_title": "为本次服务评分",
        "rate_again": "修改您的评分",
        "stars_legend": "星级（1–5）",
        "star_label": "{n} 星",
        "comment_label": "留言（选填，最多 280 字）",
        "submit": "提交评价",
        "thanks": "感谢您的评价！",
        "error_stars": "请选择 1 到 5 星。",
        "error_comment": "留言最多 280 字。",
        "expired_title": "链接已过期",
        "expired_body": "这个链接已过期。如需帮助，请拨打客服热线。",
        "revoked_title": "链接已失效",
        "revoked_body": "这个链接已失效。如需帮助，请拨打客服热线。",
        "call_hotline": "拨打客服热线",
        "missing_title": "页面不存在",
        "missing_body": "没有找到这个链接，请检查短信中的地址是否完整。",
        "busy_title": "请求过于频繁",
        "busy_body": "请稍等一分钟后再试。",
        "vcard_note": "工号 {id}",
        "callback_button": "请客服回电给我",
        "presence_free": "客服现在有空",
        "presence_busy": "客服正在通话",
        "presence_away": "客服暂时不在",
        "cb_calling": "正在给您回电，请留意来电",
        "cb_connected": "已接通，正在通话",
        "cb_waiting": "客服正忙，空闲后会马上给您回电",
        "cb_soon": "马上给您回电，请留意来电",
        "cb_done": "已为您回电，通话 {minutes} 分钟",
        "cb_done_plain": "已为您回电",
        "cb_customer_missed": "未能打通您的电话，可以再试一次",
        "cb_agent_missed": "客服暂时无法接听，请稍后再试",
        "cb_expired": "客服一直在忙，请稍后再试",
        "cb_failed": "暂时无法回电，请稍后再试或直接拨打",
        "cb_outside_hours": "现在是非工作时间，{when} {time} 起可回电",
        "cb_outside_hours_plain": "现在是非工作时间",
        "cb_link_limit": "今天的回电次数已用完，请直接拨打",
        "cb_opted_out": "这个号码已退订，我们不会再给它回电",
        "cb_refused": "暂时无法回电，请直接拨打",
        "today": "今天",
        "tomorrow": "明天",
        "weekdays": "周一,周二,周三,周四,周五,周六,周日",
    },
    "en": {
        "page_title": "{name} · your service agent",
        "cs_id": "Agent ID",
        "call_back": "Call back",
        "save_contact": "Save contact",
        "greeting": "A greeting from {name}",
        "satisfaction": "Satisfaction",
        "votes": "{count} ratings",
        "no_votes": "No ratings yet",
        "calls_handled": "Calls handled",
        "customers_served": "Customers served",
        "service_record": "Service record",
        "reviews": "Reviews",
        "anonymous": "A customer",
        "rate_title": "Rate this service",
        "rate_again": "Change your rating",
        "stars_legend": "Stars (1–5)",
        "star_label": "{n} stars",
        "comment_label": "Comment (optional, up to 280 characters)",
        "submit": "Send rating",
        "thanks": "Thank you for your rating!",
        "error_stars": "Please choose 1 to 5 stars.",
        "error_comment": "Comments can be at most 280 characters.",
        "expired_title": "Link expired",
        "expired_body": "This link has expired. For help, please call our hotline.",
        "revoked_title": "Link no longer valid",
        "revoked_body": "This link is no longer valid. For help, please call our hotline.",
        "call_hotline": "Call the hotline",
        "missing_title": "Page not found",
        "missing_body": "We could not find this link. Please check the address in your SMS.",
        "busy_title": "Too many requests",
        "busy_body": "Please wait a minute and try again.",
        "vcard_note": "Agent ID {id}",
        "callback_button": "Call me back",
        "presence_free": "Available now",
        "presence_busy": "On a call",
        "presence_away": "Away",
        "cb_calling": "Calling you now — your phone will ring shortly",
        "cb_connected": "You are connected",
        "cb_waiting": "The agent is busy — we will call you when they are free",
        "cb_soon": "We will call you in a moment — keep your phone at hand",
        "cb_done": "You talked for {minutes} min",
        "cb_done_plain": "We called you back",
        "cb_customer_missed": "We could not reach you — you can try again",
        "cb_agent_missed": "The agent could not take the call — please try again",
        "cb_expired": "The agent stayed busy — please try again later",
        "cb_failed": "The call-back could not be placed — please try again or call us",
        "cb_outside_hours": "Outside working hours — {when} from {time}",
        "cb_outside_hours_plain": "Outside working hours",
        "cb_link_limit": "That is as many call-backs as we can place today — please call us",
        "cb_opted_out": "This number has opted out, so we will not call it",
        "cb_refused": "We cannot call you back right now — please call us",
        "today": "today",
        "tomorrow": "tomorrow",
        "weekdays": "Monday,Tuesday,Wednesday,Thursday,Friday,Saturday,Sunday",
    },
}


def _supported(tag: str) -> str | None:
    """Map a BCP 47 tag such as 'zh-Hans-CN', 'zh', 'en-GB' onto a supported language."""
    primary = tag.strip().lower().split("-", 1)[0].split("_", 1)[0]
    if primary == "zh":
        return "zh-CN"
    if primary == "en":
        return "en"
    return None


def _accepted(header: str) -> list[str]:
    """Accept-Language tags, best first (stable for equal weights)."""
    weighted: list[tuple[float, int, str]] = []
    for index, item in enumerate(header.split(",")):
        tag, _, params = item.partition(";")
        tag = tag.strip()
        if not tag or tag == "*":
            continue
        weight = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if weight > 0:
            weighted.append((-weight, index, tag))
    return [tag for _, _, tag in sorted(weighted)]


def choose_language(agent_language: str, accept_language: str) -> str:
    """The language of the card's own labels: the visitor's browser first (zh or en), then
    the agent's language, then zh-CN. What the agent wrote is shown as written whatever
    this says."""
    for tag in _accepted(accept_language):
        if chosen := _supported(tag):
            return chosen
    if agent_language and (chosen := _supported(agent_language)):
        return chosen
    return DEFAULT


def strings(language: str) -> dict[str, str]:
    """The string table for a supported language (zh-CN for anything else)."""
    return STRINGS.get(language, STRINGS[DEFAULT])
