"""WeChat subscribe messages: the mini-program's access token and `subscribeMessage.send`.

Protocol (WeChat's server API):
- POST {base}/cgi-bin/stable_token {"grant_type": "client_credential", "appid", "secret",
  "force_refresh"} → {"access_token", "expires_in"}; the stable token does not invalidate the one
  other workers hold, so every worker can refresh it. Cached in Redis until shortly before it expires,
  and fetched again (force_refresh) when WeChat answers 40001/42001 (invalid or expired token).
- POST {base}/cgi-bin/message/subscribe/send?access_token=… {"touser", "template_id", "page",
  "data": {keyword: {"value"}}, "lang"} → {"errcode": 0} or an error: 43101 (the person did not
  grant, or withdrew: recorded, never retried), -1 (busy) and 45009 (rate limit): retried with
  backoff; anything else fails the push.

A push reserves one of the person's grants for its template before it is sent (a conditional
UPDATE) and gives it back when a transient error kept the message from being delivered.
"""

from __future__ import annotations

import datetime
import logging

import requests
from allauth.socialaccount.models import SocialAccount
from django.conf import settings
from django.core.cache import cache
from django.db.models import F
from django.utils import timezone, translation

from accounts.models import Language, User
from accounts.notifications import statements
from accounts.notifications.kinds import link_for, render
from accounts.notifications.models import PushStatus, WeChatPush, WeChatSubscription
from accounts.selectors import WECHAT_PROVIDER_ID
from core.db import execute

logger = logging.getLogger(__name__)

TOKEN_CACHE_KEY = "wechat:miniprogram:access_token"  # noqa: S105 - a cache key, not a secret
TOKEN_MARGIN_SECONDS = 300
ERRCODE_TOKEN_INVALID = (40001, 42001, 40014)
ERRCODE_REFUSED = 43101
ERRCODE_TRANSIENT = (-1, 45009)
MAX_ATTEMPTS = 6
# A push being sent is claimed for this long; a worker lost meanwhile lets it become due again.
CLAIM_SECONDS = 300


class WeChatUnavailable(Exception):  # noqa: N818 - a condition, like WeChatError
    """WeChat could not be reached or answered nonsense: a transient failure."""


def _base() -> str:
    return settings.WECHAT_API_BASE_URL.rstrip("/")


def access_token(*, force_refresh: bool = False) -> str:
    """The mini-program's access token, from the shared cache or WeChat's stable_token endpoint."""
    if not force_refresh:
        token = cache.get(TOKEN_CACHE_KEY)
        if token:
            return token
    try:
        response = requests.post(
            _base() + "/cgi-bin/stable_token",
            json={
                "grant_type": "client_credential",
                "appid": settings.WECHAT_MINIPROGRAM_APP_ID,
                "secret": settings.WECHAT_MINIPROGRAM_SECRET,
                "force_refresh": force_refresh,
            },
            timeout=settings.WECHAT_API_TIMEOUT_SECONDS,
        )
        payload = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise WeChatUnavailable("stable_token unreachable") from exc
    token, expires_in = payload.get("access_token"), payload.get("expires_in")
    if not token or not expires_in:
        logger.warning("wechat.token_refused", extra={"errcode": payload.get("errcode")})
        raise WeChatUnavailable(f"stable_token errcode {payload.get('errcode')}")
    cache.set(TOKEN_CACHE_KEY, token, max(int(expires_in) - TOKEN_MARGIN_SECONDS, 60))
    return token


def _send(body: dict, *, token: str) -> int:
    try:
        response = requests.post(
            _base() + "/cgi-bin/message/subscribe/send",
            params={"access_token": token},
            json=body,
            timeout=settings.WECHAT_API_TIMEOUT_SECONDS,
        )
        return int(response.json().get("errcode") or 0)
    except (requests.RequestException, ValueError, TypeError) as exc:
        raise WeChatUnavailable("subscribe/send unreachable") from exc


def _value(source: str, *, title: str, body: str, params: dict) -> str:
    if source == "title":
        return title
    if source == "body":
        return body
    if source.startswith("param:"):
        return str(params.get(source.removeprefix("param:"), ""))
    if source.startswith("text:"):
        return source.removeprefix("text:")
    return ""


# The `lang` of subscribeMessage.send (the language of the message's own labels in WeChat).
WECHAT_LANG = {Language.ZH_HANS: "zh_CN", Language.EN: "en_US"}


def recipient_language(language: str) -> str:
    """The language a person reads pushes in: the one they saved, else the platform's (zh-Hans)."""
    return language if language in Language.values else Language.ZH_HANS


def message_body(push: WeChatPush, *, openid: str, language: str = "") -> dict:
    """The send request's body: the template's keywords filled in the recipient's language."""
    notification, template = push.notification, push.template
    language = recipient_language(language)
    with translation.override(language):
        title, body = render(kind=notification.kind, params=notification.params)
        data = {
            # WeChat's `thing` keywords take 20 characters at most.
            keyword: {"value": _value(source, title=title, body=body, params=notification.params)[:20]}
            for keyword, source in sorted(template.fields.items())
        }
    return {
        "touser": openid,
        "template_id": template.template_id,
        "page": template.page or link_for(kind=notification.kind, params=notification.params).lstrip("/"),
        "data": data,
        "miniprogram_state": getattr(settings, "WECHAT_MINIPROGRAM_STATE", "formal"),
        "lang": WECHAT_LANG[language],
    }


def _backoff(attempts: int) -> datetime.timedelta:
    return datetime.timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


def _finish(push_id: int, **fields) -> None:
    WeChatPush.objects.filter(pk=push_id).update(**fields)


def push_send(*, push_id: int) -> str:
    """Sends one due push, once: claims it (a conditional UPDATE), reserves a grant, calls WeChat.

    The person's choices are read again after the claim, as they are now: a push waits (quiet
    hours, a retry after a busy WeChat, a lost worker's claim) while they may change. WeChat turned
    off for the kind meanwhile: the push is refused; quiet hours begun meanwhile: it waits until
    they end. Either way nothing is sent and no grant is used.

    Returns the push's status afterwards. Safe to run twice: a push not due or not pending is left.
    """
    now = timezone.now()
    claimed = WeChatPush.objects.filter(pk=push_id, status=PushStatus.PENDING, send_after__lte=now).update(
        send_after=now + datetime.timedelta(seconds=CLAIM_SECONDS), attempts=F("attempts") + 1
    )
    if not claimed:
        return "skipped"
    push = WeChatPush.objects.select_related("notification", "template").get(pk=push_id)
    user_id = push.notification.user_id
    [(wechat_on, due_at)] = execute(
        statements.PUSH_CHOICES,
        {"notification": push.notification_id, "now": now, "tz": settings.TIME_ZONE},
    )
    if not wechat_on:
        _finish(push_id, status=PushStatus.REFUSED)
        return PushStatus.REFUSED
    if due_at > now:
        # Waiting for quiet hours to end is not an attempt: the claim's count is given back.
        _finish(push_id, send_after=due_at, attempts=F("attempts") - 1)
        return PushStatus.PENDING
    language = User.objects.filter(pk=user_id).values_list("language", flat=True).first() or ""
    openid = (
        SocialAccount.objects.filter(user_id=user_id, provider=WECHAT_PROVIDER_ID)
        .values_list("uid", flat=True)
        .first()
    )
    grants = WeChatSubscription.objects.filter(user_id=user_id, template=push.template)
    if openid is None or not grants.filter(remaining__gt=0).update(remaining=F("remaining") - 1):
        _finish(push_id, status=PushStatus.NO_GRANT)
        return PushStatus.NO_GRANT
    body = message_body(push, openid=openid, language=language)
    try:
        errcode = _send(body, token=access_token())
        if errcode in ERRCODE_TOKEN_INVALID:
            errcode = _send(body, token=access_token(force_refresh=True))
    except WeChatUnavailable:
        errcode = -1
    if errcode == 0:
        _finish(push_id, status=PushStatus.SENT, sent_at=timezone.now(), errcode=0)
        return PushStatus.SENT
    if errcode == ERRCODE_REFUSED:
        # The person withdrew (or never granted as we counted): nothing is left to send with.
        grants.update(remaining=0, last_answer="refused", updated_at=timezone.now())
        _finish(push_id, status=PushStatus.REFUSED, errcode=errcode)
        return PushStatus.REFUSED
    if errcode in ERRCODE_TRANSIENT or errcode in ERRCODE_TOKEN_INVALID:
        grants.update(remaining=F("remaining") + 1)
        if push.attempts < MAX_ATTEMPTS:
            _finish(push_id, send_after=timezone.now() + _backoff(push.attempts), errcode=errcode)
            return PushStatus.PENDING
    _finish(push_id, status=PushStatus.FAILED, errcode=errcode)
    logger.warning("wechat.push_failed", extra={"push": push_id, "errcode": errcode})
    return PushStatus.FAILED


def pushes_due(*, limit: int = 500) -> list[int]:
    return list(
        WeChatPush.objects.filter(status=PushStatus.PENDING, send_after__lte=timezone.now())
        .order_by("send_after", "id")
        .values_list("pk", flat=True)[:limit]
    )
