import base64
import datetime
import os
import re

import pytest
from allauth.socialaccount.models import SocialAccount
from django.core.cache import cache
from django.db import connection

from accounts import services
from accounts.models import (
    AgreementAcceptance,
    DataSource,
    DataSourceAuthorization,
    Device,
    Friendship,
    IdentityJoin,
    PersonalDetails,
    PoolingConsent,
    User,
)
from accounts.personal_data_registry import personal_data_modules
from accounts.selectors import data_source_is_authorized, friend_ids_of, pooling_consent_active
from core.api.serializers import local_datetime_text
from tests.accounts.conftest import app_client, open_guest, wechat_sign_in
from tests.accounts.factories import UserFactory
from tests.accounts.test_profile import image_file
from tests.conftest import session_token_for
from tests.registry.factories import POOLING_VERSION, consenting

pytestmark = pytest.mark.django_db

PHONE = "13987654321"
ID_NUMBER = "330802199202023456"


def befriend(a: User, b: User) -> None:
    services.friendship_accept(user=a, code=services.invite_code_get_or_create(user=b).code)


def test_personal_data_modules_are_found_left_to_right():
    names = [module.__name__ for module in personal_data_modules()]

    assert names[0] == "accounts.personal_data"
    order = ["accounts", "activities", "rewards", "merchants", "registry"]
    present = [name.split(".")[0] for name in names]
    assert present == [app for app in order if app in present]


def test_a_guest_merges_into_their_bank_account_nothing_lost_nothing_doubled(banks, agreements):
    common_friend, guest_friend, bank_friend = UserFactory(), UserFactory(), UserFactory()
    guest_response = open_guest(app_client()).json()
    guest_token = guest_response["meta"]["session_token"]
    guest = User.objects.get(public_id=guest_response["user"]["public_id"])
    services.profile_update(user=guest, nickname="游客小绿")
    services.data_source_authorize(user=guest, source=DataSource.PHONE_STEPS)
    services.data_source_authorize(user=guest, source=DataSource.TRANSIT_CARD)
    befriend(guest, common_friend)
    befriend(guest, guest_friend)

    bank = banks["quzhou-bank"]
    signed_in = bank.sign_in(app_client(), bank.id_token(sub="customer-7", phone_number=PHONE))
    bank_token = signed_in.json()["meta"]["session_token"]
    bank_user = SocialAccount.objects.get(uid="customer-7").user
    services.agreements_accept_current(user=bank_user)
    services.data_source_authorize(user=bank_user, source=DataSource.PHONE_STEPS)
    befriend(bank_user, common_friend)
    befriend(bank_user, bank_friend)

    response = app_client(bank_token).post(
        "/api/v1/me/merge", {"source_session_token": guest_token}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["nickname"] == "游客小绿"  # the bank account had none
    guest.refresh_from_db()
    assert guest.is_closed
    assert guest.merged_into == bank_user
    assert Device.objects.get().user == bank_user
    assert friend_ids_of(user_id=bank_user.id) == {common_friend.id, guest_friend.id, bank_friend.id}
    assert friend_ids_of(user_id=common_friend.id) == {bank_user.id}
    assert (
        Friendship.objects.filter(user=guest).count() + Friendship.objects.filter(friend=guest).count() == 0
    )
    active = DataSourceAuthorization.objects.filter(user=bank_user, revoked_at__isnull=True)
    assert sorted(active.values_list("source", flat=True)) == ["phone_steps", "transit_card"]
    assert AgreementAcceptance.objects.filter(user=bank_user).count() == 2
    # The guest's token is dead; the device can't get a guest session any more.
    assert app_client(guest_token).get("/api/v1/me").status_code == 401
    assert open_guest(app_client()).json()["error"]["code"] == "guest_device_upgraded"


def test_a_merge_brings_the_sources_acceptances_into_the_targets_copy(agreements):
    source, target = UserFactory(), UserFactory()
    services.agreements_accept_current(user=source)

    services.account_merge(source_user=source, target_user=target)

    target.refresh_from_db()
    source.refresh_from_db()
    assert sorted(target.accepted_agreement_ids) == sorted(agreement.pk for agreement in agreements.values())
    assert source.accepted_agreement_ids == []  # its acceptances moved to the target


def test_a_merge_keeps_the_id_number_that_joins_one_person_across_banks(banks, agreements):
    quzhou, jiangshan = banks["quzhou-bank"], banks["jiangshan-bank"]
    # The account that remains: its bank vouched for a phone number only; the other one's verified
    # the ID number.
    target_token = jiangshan.sign_in(
        app_client(), jiangshan.id_token(sub="js-1", phone_number="13900000001")
    ).json()["meta"]["session_token"]
    source_token = quzhou.sign_in(
        app_client(), quzhou.id_token(sub="qz-1", phone_number="13900000002", cn_id_number=ID_NUMBER)
    ).json()["meta"]["session_token"]
    target = SocialAccount.objects.get(uid="js-1").user

    merged = app_client(target_token).post(
        "/api/v1/me/merge", {"source_session_token": source_token}, format="json"
    )

    assert merged.status_code == 200
    assert merged.json()["id_number"] == "330***********3456"
    # Another bank identity whose bank verified that ID number joins this account, not a new one.
    jiangshan.sign_in(app_client(), jiangshan.id_token(sub="js-2", cn_id_number=ID_NUMBER))
    assert SocialAccount.objects.get(uid="js-2").user == target
    assert User.objects.filter(closed_at__isnull=True).count() == 1
    assert PersonalDetails.objects.count() == 1


def _joined_across_banks(banks) -> User:
    quzhou, jiangshan = banks["quzhou-bank"], banks["jiangshan-bank"]
    quzhou.sign_in(app_client(), quzhou.id_token(sub="qz-j", cn_id_number=ID_NUMBER))
    jiangshan.sign_in(app_client(), jiangshan.id_token(sub="js-j", cn_id_number=ID_NUMBER))
    return SocialAccount.objects.get(uid="qz-j").user


def test_the_export_lists_the_identities_joined_by_id_number(banks, agreements):
    user = _joined_across_banks(banks)
    join = IdentityJoin.objects.get(user=user)

    section = services.account_export(user=user)["accounts"]

    assert section["identities_joined_by_id_number"] == [
        {"provider": "jiangshan-bank", "joined_at": local_datetime_text(join.joined_at), "seen_at": None}
    ]


def test_a_merge_brings_the_identities_joined_by_id_number_over(banks, agreements):
    source = _joined_across_banks(banks)
    target = UserFactory()

    services.account_merge(source_user=source, target_user=target)

    assert list(IdentityJoin.objects.values_list("user", "provider")) == [(target.pk, "jiangshan-bank")]


def test_erasure_removes_the_identities_joined_by_id_number(banks, agreements):
    user = _joined_across_banks(banks)

    services.account_erase(user=user)

    assert not IdentityJoin.objects.exists()


def test_merge_needs_a_valid_token_of_another_open_account(person, person_client):
    same = person_client.post(
        "/api/v1/me/merge",
        {"source_session_token": person_client._credentials["HTTP_X_SESSION_TOKEN"]},
        format="json",
    )
    unknown = person_client.post("/api/v1/me/merge", {"source_session_token": "made-up"}, format="json")

    assert same.json()["error"]["code"] == "merge_same_account"
    assert unknown.json()["error"]["code"] == "merge_source_invalid"
    person.refresh_from_db()
    assert not person.is_closed


def test_merging_two_wechat_identities_keeps_one(wechat, client_for):
    wechat.add_code("a", openid="openid-a", session_key=base64.b64encode(b"a" * 16).decode())
    wechat.add_code("b", openid="openid-b", session_key=base64.b64encode(b"b" * 16).decode())
    token_a = wechat_sign_in(app_client(), "a").json()["meta"]["session_token"]
    token_b = wechat_sign_in(app_client(), "b").json()["meta"]["session_token"]
    target = SocialAccount.objects.get(uid="openid-a").user

    app_client(token_a).post("/api/v1/me/merge", {"source_session_token": token_b}, format="json")

    assert list(SocialAccount.objects.values_list("uid", "user")) == [("openid-a", target.pk)]


def test_export_holds_everything_and_masks_identifiers(banks, agreements):
    bank = banks["quzhou-bank"]
    token = bank.sign_in(
        app_client(), bank.id_token(sub="customer-export-1", phone_number=PHONE, cn_id_number=ID_NUMBER)
    ).json()["meta"]["session_token"]
    user = SocialAccount.objects.get().user
    services.agreements_accept_current(user=user)
    services.data_source_authorize(user=user, source=DataSource.CHARITY)

    response = app_client(token).get("/api/v1/me/export")

    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    export = response.json()
    assert export["account"] == str(user.public_id)
    section = export["accounts"]
    assert section["verified_details"] == {"phone_number": "139****4321", "id_number": "330***********3456"}
    assert section["data_source_authorizations"][0]["source"] == "charity"
    assert len(section["agreements_accepted"]) == 2
    assert section["identities"][0]["provider"] == "quzhou-bank"
    text = response.content.decode()
    assert PHONE not in text
    assert ID_NUMBER not in text
    assert "customer-export-1" not in text
    for module in personal_data_modules():
        assert module.__name__.split(".")[0] in export
    # Every moment in the export is in the local time zone, as in the rest of the API's answers.
    moments = re.findall(r"\d{4}-\d\d-\d\dT\d\d:\d\d[0-9:.]*(Z|[+-]\d\d:\d\d)", text)
    assert moments
    assert set(moments) == {"+08:00"}


def _database_rows_containing(marker: str) -> list[str]:
    found = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT count(*) FROM "{table}" t WHERE t::text ILIKE %s', [f"%{marker}%"])  # noqa: S608
            if cursor.fetchone()[0]:
                found.append(table)
    return found


def _cache_entries_containing(marker: str) -> list[str]:
    client = cache.client.get_client()
    found = []
    for key in client.scan_iter("*"):
        value = client.get(key) or b""
        if marker.encode() in key or marker.encode() in value:
            found.append(key.decode())
    return found


def test_erasure_leaves_no_personal_field_in_the_database_or_the_cache(
    banks, wechat, agreements, django_capture_on_commit_callbacks
):
    device_id = "erase-me-device-0123456789"
    guest = open_guest(app_client(), device_id=device_id).json()
    token = guest["meta"]["session_token"]
    user = User.objects.get(public_id=guest["user"]["public_id"])
    bank = banks["quzhou-bank"]
    bank.sign_in(
        app_client(token),
        bank.id_token(sub="bank-subject-erase-1", phone_number=PHONE, cn_id_number=ID_NUMBER),
        process="connect",
    )
    wechat.add_code("c", openid="openid-erase-1", session_key=base64.b64encode(b"k" * 16).decode())
    wechat_sign_in(app_client(token), "c", process="connect")
    services.profile_update(user=user, nickname="独一无二的昵称")
    with django_capture_on_commit_callbacks(execute=True):
        services.avatar_set(user=user, upload=image_file())
    user.refresh_from_db()
    avatar_path = user.avatar.path
    services.data_source_authorize(user=user, source=DataSource.PHONE_STEPS)
    befriend(user, UserFactory())
    details = PersonalDetails.objects.get(user=user)
    markers = [
        "独一无二的昵称",
        user.username,
        str(user.public_id),
        PHONE,
        ID_NUMBER,
        details.phone_number_digest,
        details.id_number_digest,
        Device.objects.get(user=user).device_digest,
        "bank-subject-erase-1",
        "openid-erase-1",
        os.path.basename(avatar_path),
        services.invite_code_get_or_create(user=user).code,
    ]

    # The scans do see personal data while it is there.
    assert _database_rows_containing("独一无二的昵称") == ["accounts_user"]
    assert _cache_entries_containing(Device.objects.get(user=user).device_digest) != []

    with django_capture_on_commit_callbacks(execute=True):
        response = app_client(token).post("/api/v1/me/erasure", {"confirm": "ERASE"}, format="json")

    assert response.status_code == 204
    user.refresh_from_db()
    assert user.is_closed
    assert not user.is_active
    assert not os.path.exists(avatar_path)
    for marker in markers:
        assert _database_rows_containing(marker) == [], marker
        assert _cache_entries_containing(marker) == [], marker
    assert app_client(token).get("/api/v1/me").status_code == 401
    assert data_source_is_authorized(user_id=user.id, source=DataSource.PHONE_STEPS) is False
    # The same device may start afresh as a new guest.
    assert open_guest(app_client(), device_id=device_id).status_code == 201


def test_erasure_needs_an_explicit_confirmation(person, person_client):
    response = person_client.post("/api/v1/me/erasure", {}, format="json")

    assert response.status_code == 400
    person.refresh_from_db()
    assert not person.is_closed


def test_the_export_lists_every_grant_and_revocation_of_the_pooling_consent(agreements):
    person = consenting(UserFactory())
    revoked = services.pooling_consent_revoke(user=person)
    granted_again = services.pooling_consent_grant(user=person, version=POOLING_VERSION)

    section = services.account_export(user=person)["accounts"]

    assert section["pooling_consents"] == [
        {
            "version": POOLING_VERSION,
            "granted_at": local_datetime_text(revoked.granted_at),
            "revoked_at": local_datetime_text(revoked.revoked_at),
        },
        {
            "version": POOLING_VERSION,
            "granted_at": local_datetime_text(granted_again.granted_at),
            "revoked_at": None,
        },
    ]


def test_a_merge_brings_the_pooling_consent_over_with_its_history(agreements):
    source = consenting(UserFactory())
    target = UserFactory()

    services.account_merge(source_user=source, target_user=target)

    assert pooling_consent_active(user=target) is not None
    assert not PoolingConsent.objects.filter(user=source).exists()


def test_a_merge_of_two_consenting_accounts_keeps_one_active_consent_the_targets(agreements):
    source, target = consenting(UserFactory()), consenting(UserFactory())
    kept = pooling_consent_active(user=target)

    services.account_merge(source_user=source, target_user=target)

    assert pooling_consent_active(user=target) == kept
    assert PoolingConsent.objects.filter(user=target).count() == 2


def test_erasure_revokes_the_pooling_consent_and_keeps_its_history(agreements):
    person = consenting(UserFactory())

    services.account_erase(user=person)

    assert pooling_consent_active(user=person) is None
    assert PoolingConsent.objects.filter(user=person).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_accounts_merging_into_each_other_at_once_leave_exactly_one_open():
    import threading

    from core.api.errors import ApplicationError

    first, second = UserFactory(), UserFactory()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def merge(source_id: int, target_id: int) -> None:
        try:
            barrier.wait()
            source, target = User.objects.get(pk=source_id), User.objects.get(pk=target_id)
            try:
                services.account_merge(source_user=source, target_user=target)
                outcomes.append("merged")
            except ApplicationError as error:
                outcomes.append(error.error.code)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=merge, args=(first.pk, second.pk)),
        threading.Thread(target=merge, args=(second.pk, first.pk)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["merge_source_invalid", "merged"]
    assert User.objects.filter(pk__in=[first.pk, second.pk], closed_at__isnull=True).count() == 1


def test_after_a_merge_the_daily_cap_holds_for_the_person_and_settled_coins_stay(client_for):
    from activities.models import ActivityRecord, BehaviourDay, DailyCarbon, MergeCapCorrection
    from activities.selectors import receipt_of
    from activities.services import steps_sync
    from core.local_time import LOCAL_TZ
    from operations.invariants import invariant_violations
    from rewards.models import LedgerAccount
    from rewards.services import settlement_run
    from tests.accounts.factories import authorization_granted

    # Given two accounts of one person, each with 8,000 steps (160 g) yesterday, settled into coins:
    # walking is capped at 200 g a day.
    target, source = UserFactory(), UserFactory()
    yesterday = datetime.datetime.now(tz=LOCAL_TZ).date() - datetime.timedelta(days=1)
    for user in (target, source):
        authorization_granted(user, DataSource.PHONE_STEPS)
        steps_sync(user=user, steps_by_day={yesterday: 8000})
    settlement_run(day=yesterday, within_transaction=True)
    wallets = LedgerAccount.objects.filter(kind="wallet", owner_id__in=[target.pk, source.pk])
    assert sorted(wallets.values_list("balance", flat=True)) == [16, 16]

    # When the person merges them
    response = client_for(target).post(
        "/api/v1/me/merge", {"source_session_token": session_token_for(source)}, format="json"
    )

    # Then the day credits 200 g, not 320 g: the later record lost 120 g and says why ...
    assert response.status_code == 200, response.content
    assert response.json()["merge"] == {
        "capped_carbon_mg": 120_000,
        "capped_days": 1,
        "settled_kept_carbon_mg": 120_000,
        "settled_coins_kept": True,
        "groups_left": 0,
        "message": "Both accounts' activities now count as one person's: the daily and monthly caps apply "
        "to their sum. 120 g over the caps on 1 day(s) is no longer credited; each record it came off "
        "says so. Coins already earned are kept.",
    }
    records = list(
        ActivityRecord.objects.filter(user=target)
        .order_by("id")
        .values_list("credited_carbon_mg", "capped_by", "capped_at_merge_mg")
    )
    assert records == [(160_000, "", 0), (40_000, "day", 120_000)]
    capped = ActivityRecord.objects.filter(user=target).order_by("id").last()
    assert "once two accounts were merged (120 g taken off then" in receipt_of(capped)
    assert BehaviourDay.objects.get(user=target, day=yesterday).credited_carbon_mg == 200_000
    day = DailyCarbon.objects.get(user=target, day=yesterday)
    assert (day.credited_carbon_mg, day.settled_carbon_mg) == (200_000, 200_000)
    assert list(
        MergeCapCorrection.objects.values_list(
            "target_user_id", "source_user_id", "day", "capped_carbon_mg", "settled_kept_carbon_mg"
        )
    ) == [(target.pk, source.pk, yesterday, 120_000, 120_000)]
    # ... and the coins already minted for it are all kept, nothing owed or clawed back.
    assert LedgerAccount.objects.get(kind="wallet", owner_id=target.pk).balance == 32
    assert LedgerAccount.objects.get(kind="wallet", owner_id=source.pk).balance == 0
    assert invariant_violations() == []


def test_a_merge_caps_the_month_too_and_answers_in_chinese(client_for):
    from activities.models import ActivityRecord, BehaviourMonth, DailyCarbon, Factor, MethodologyVersion
    from activities.services import methodology_version_copy, steps_sync
    from core.local_time import LOCAL_TZ
    from operations.invariants import invariant_violations
    from tests.accounts.factories import authorization_granted

    # Walking capped at 250 g a month from a version in force since the start of the month.
    today = datetime.datetime.now(tz=LOCAL_TZ).date()
    days = [today - datetime.timedelta(days=2), today - datetime.timedelta(days=1)]
    if days[0].month != days[1].month:
        days = [today - datetime.timedelta(days=1), today]
    version = methodology_version_copy(
        source=MethodologyVersion.objects.get(number=1), effective_from=days[0].replace(day=1)
    )
    Factor.objects.filter(version=version, behaviour__code="walk").update(monthly_cap_mg=250_000)
    target, source = UserFactory(), UserFactory()
    for user in (target, source):
        authorization_granted(user, DataSource.PHONE_STEPS)
    steps_sync(user=target, steps_by_day={days[0]: 5000})  # 100 g
    steps_sync(user=source, steps_by_day={days[1]: 10000})  # 200 g
    steps_sync(user=target, steps_by_day={days[1]: 7500})  # 150 g: 250 g in the month, each

    response = client_for(target).post(
        "/api/v1/me/merge",
        {"source_session_token": session_token_for(source)},
        format="json",
        HTTP_ACCEPT_LANGUAGE="zh-Hans",
    )

    # Then the second day keeps the source's 200 g but the month has room for 150 g of it only;
    # the target's 150 g of that day no longer fits the daily cap.
    assert response.status_code == 200, response.content
    merge = response.json()["merge"]
    assert (merge["capped_carbon_mg"], merge["capped_days"], merge["settled_kept_carbon_mg"]) == (
        200_000,
        1,
        0,
    )
    assert merge["message"] == (
        "两个账户的活动现在算作同一人的：每日和每月上限按合计计算。1 天中超出上限的 200 克不再计入，"
        "相关记录的明细中已注明。已获得的碳币全部保留。"
    )
    records = list(
        ActivityRecord.objects.filter(user=target)
        .order_by("local_day", "occurred_at", "id")
        .values_list("credited_carbon_mg", "capped_by", "capped_at_merge_mg")
    )
    assert records == [(100_000, "", 0), (150_000, "month", 50_000), (0, "day", 150_000)]
    assert BehaviourMonth.objects.get(user=target, month=days[0].replace(day=1)).credited_carbon_mg == 250_000
    assert DailyCarbon.objects.get(user=target, day=days[1]).credited_carbon_mg == 150_000
    assert invariant_violations() == []


def test_closing_an_account_ends_its_sessions_in_the_database_and_the_cache(
    django_capture_on_commit_callbacks,
):
    # Before, the sessions stayed (dead, the password hash changed) until they expired, holding the
    # bank subject or WeChat openid the person had signed in with.
    from django.contrib.sessions.backends.cached_db import KEY_PREFIX

    from accounts.models import PersonSession

    erased, merged, target, stranger = UserFactory(), UserFactory(), UserFactory(), UserFactory()
    tokens = {
        person: [session_token_for(person), session_token_for(person)]
        for person in (erased, merged, target, stranger)
    }
    assert set(PersonSession.objects.values_list("user_id", flat=True)) == {
        person.pk for person in (erased, merged, target, stranger)
    }

    with django_capture_on_commit_callbacks(execute=True):
        services.account_erase(user=erased)
        services.account_merge(source_user=merged, target_user=target)

    assert sorted(PersonSession.objects.values_list("user_id", flat=True)) == sorted(
        [target.pk, target.pk, stranger.pk, stranger.pk]
    )
    for person in (erased, merged):
        assert cache.get_many([KEY_PREFIX + token for token in tokens[person]]) == {}
    for person in (target, stranger):
        assert app_client(tokens[person][0]).get("/api/v1/me").status_code == 200


def test_the_live_sessions_keep_their_person_when_they_move_to_the_indexed_table():
    import importlib

    from django.contrib.auth import SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
    from django.utils import timezone

    from accounts.models import PersonSession

    person = UserFactory()
    with connection.cursor() as cursor:
        for key, data in (("k-person", {SESSION_KEY: str(person.pk)}), ("k-anonymous", {})):
            cursor.execute(
                "INSERT INTO django_session VALUES (%s, %s, %s)",
                [key, DatabaseSessionStore().encode(data), timezone.now() + datetime.timedelta(days=1)],
            )
        cursor.execute(
            "INSERT INTO django_session VALUES ('k-expired', 'x', %s)",
            [timezone.now() - datetime.timedelta(days=1)],
        )
    migration = importlib.import_module("accounts.migrations.0010_person_sessions")

    migration.live_sessions_copy(None, type("Editor", (), {"connection": connection})())

    assert dict(PersonSession.objects.values_list("session_key", "user_id")) == {
        "k-person": person.pk,
        "k-anonymous": None,
    }
