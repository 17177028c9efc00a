"""The WeChat mini-program platform's `jscode2session`: a `wx.login()` code for an openid.

Protocol: GET {base}/sns/jscode2session?appid=&secret=&js_code=&grant_type=authorization_code
answers JSON: {"openid", "session_key", "unionid"?} or {"errcode", "errmsg"}.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import requests
from django.conf import settings

logger = logging.getLogger(__name__)

ERRCODE_INVALID_CODE = 40029
ERRCODE_CODE_USED = 40163
ERRCODE_RATE_LIMITED = 45011
ERRCODE_SYSTEM_BUSY = -1


class WeChatError(Exception):
    def __init__(self, reason: str, errcode: int | None = None) -> None:
        super().__init__(f"{reason} (errcode {errcode})")
        self.reason = reason  # "invalid_code" | "rate_limited" | "unavailable"
        self.errcode = errcode


@dataclass(frozen=True)
class MiniProgramSession:
    openid: str
    session_key: str  # base64, as WeChat sends it
    unionid: str = ""


def jscode2session(*, code: str, app_id: str, secret: str) -> MiniProgramSession:
    """Exchanges a `wx.login()` code; raises WeChatError with a reason the caller maps to a code."""
    url = settings.WECHAT_API_BASE_URL.rstrip("/") + "/sns/jscode2session"
    try:
        response = requests.get(
            url,
            params={
                "appid": app_id,
                "secret": secret,
                "js_code": code,
                "grant_type": "authorization_code",
            },
            timeout=settings.WECHAT_API_TIMEOUT_SECONDS,
        )
        response.raise_for_status()
        payload = response.json()
    except (requests.RequestException, ValueError) as exc:
        logger.warning("jscode2session unreachable: %s", type(exc).__name__)
        raise WeChatError("unavailable") from exc

    errcode = payload.get("errcode") or 0
    if errcode in (ERRCODE_INVALID_CODE, ERRCODE_CODE_USED):
        raise WeChatError("invalid_code", errcode)
    if errcode == ERRCODE_RATE_LIMITED:
        raise WeChatError("rate_limited", errcode)
    if errcode:
        # The secret never reaches a log line; errmsg is WeChat's own text.
        logger.warning("jscode2session refused: errcode %s", errcode)
        raise WeChatError("unavailable", errcode)
    openid, session_key = payload.get("openid"), payload.get("session_key")
    if not openid or not session_key:
        raise WeChatError("unavailable")
    return MiniProgramSession(openid=openid, session_key=session_key, unionid=payload.get("unionid") or "")
