"""What a caller on hold hears, in each menu language; the same words on both channels."""

from __future__ import annotations

import math

from routing.estimates import WaitEstimate

_POSITION = {
    "zh-CN": "您前面还有{ahead}位客户，预计等待约{minutes}分钟。",
    "en-US": "You are number {position} in line. The expected wait is about {minutes} minutes.",
}
_NEXT = {
    "zh-CN": "您是下一位，请稍候。",
    "en-US": "You are next in line, please hold.",
}
CALLBACK_OFFER = {
    "zh-CN": "如需在不失去排队位置的情况下挂机等待回电，请按1。",
    "en-US": "To hang up and be called back without losing your place in line, press 1.",
}
NO_AGENT_CALLBACK = {
    "zh-CN": "目前没有客服人员在线。如需挂机并在客服人员上线后获得回电，请按1；继续等待请不要挂机。",
    "en-US": "No agent is available right now. To hang up and be called back as soon as one is, press 1. "
             "To keep waiting, stay on the line.",
}
"""The first words on hold when nobody of the queue is logged in (``queue.availability`` answered ``callback``)."""
CALLBACK_CONFIRMED = {
    "zh-CN": "好的，轮到您时我们会回电，再见。",
    "en-US": "Thank you. We will call you back when it is your turn. Goodbye.",
}
AGENT_WHISPER = {
    "zh-CN": "来电，{intent}，已等待{seconds}秒。",
    "en-US": "Incoming call, {intent}, waited {seconds} seconds.",
}
INTENTS = {
    "zh-CN": {"agent": "人工服务", "inquiry": "查询", "loss": "挂失", "complaint": "投诉", "survey": "回访"},
    "en-US": {"agent": "agent", "inquiry": "inquiry", "loss": "lost card", "complaint": "complaint",
              "survey": "survey"},
}
"""What the agent hears the caller came for, in the whisper's own language (never an English code word)."""
CALLBACK_WHISPER = {
    "zh-CN": "回拨客户，正在接通。",
    "en-US": "Callback to a customer, connecting now.",
}
SCREEN_PROMPT = {
    "zh-CN": "热线来电，接听请按1。",
    "en-US": "Hotline call. Press 1 to take it.",
}
CALL_GONE = {
    "zh-CN": "该来电已结束或已由其他坐席接听。",
    "en-US": "This call has ended or was taken by another agent.",
}


def position_announcement(language: str, estimate: WaitEstimate) -> str | None:
    """The position and expected wait, or None when the estimate is not confident enough to say."""
    if not estimate.confident or estimate.seconds is None:
        return None
    if estimate.position <= 1:
        return _pick(_NEXT, language)
    minutes = max(1, math.ceil(estimate.seconds / 60))
    return _pick(_POSITION, language).format(position=estimate.position, ahead=estimate.position - 1, minutes=minutes)


def intent_name(intent: str, language: str) -> str:
    names = INTENTS.get(language) or INTENTS["en-US"]
    return names.get(intent, "-")


def text(table: dict[str, str], language: str, **values: object) -> str:
    return _pick(table, language).format(**values)


def _pick(table: dict[str, str], language: str) -> str:
    return table.get(language) or table["en-US"]
