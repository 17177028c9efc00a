"""Where each table would live on a distributed PostgreSQL (Citus): docs/scaling.md, "The path to
Citus". `tests/config/test_table_classes.py` fails for a table not listed here, so a new table
declares its class when it is created.

- DISTRIBUTED: sharded by the person it belongs to; the value is its distribution column. A
  column marked "(to add)" does not exist yet: the row reaches its person through a parent and
  would carry the person's id before distribution (co-location needs it in the table itself).
- REFERENCE: small, read by every shard's joins, written rarely: a copy on every node.
- LOCAL: stays on the coordinator: the operators' and the scheduler's tables, runs and counters,
  and what is built from everyone at once (the boards' global ranks, the registry's lots).
"""

from __future__ import annotations

DISTRIBUTED = "distributed"
REFERENCE = "reference"
LOCAL = "local"

# table → (class, distribution column or "")
TABLE_CLASSES: dict[str, tuple[str, str]] = {
    # People and what belongs to each of them: accounts
    "accounts_user": (DISTRIBUTED, "id"),
    "accounts_user_groups": (DISTRIBUTED, "user_id"),
    "accounts_user_user_permissions": (DISTRIBUTED, "user_id"),
    "accounts_datasourceauthorization": (DISTRIBUTED, "user_id"),
    "accounts_agreementacceptance": (DISTRIBUTED, "user_id"),
    "accounts_poolingconsent": (DISTRIBUTED, "user_id"),
    "accounts_device": (DISTRIBUTED, "user_id"),
    "accounts_personaldetails": (DISTRIBUTED, "user_id"),
    "accounts_identityjoin": (DISTRIBUTED, "user_id"),
    "accounts_invitecode": (DISTRIBUTED, "user_id"),
    "accounts_friendship": (DISTRIBUTED, "user_id"),
    "accounts_notification": (DISTRIBUTED, "user_id"),
    "accounts_notificationpreference": (DISTRIBUTED, "user_id"),
    "accounts_quiethours": (DISTRIBUTED, "user_id"),
    "accounts_wechatsubscription": (DISTRIBUTED, "user_id"),
    "accounts_wechatsubscriptionreport": (DISTRIBUTED, "user_id"),
    "accounts_wechatpush": (DISTRIBUTED, "user_id (to add)"),
    "account_emailaddress": (DISTRIBUTED, "user_id"),
    "account_emailconfirmation": (DISTRIBUTED, "user_id (to add)"),
    "socialaccount_socialaccount": (DISTRIBUTED, "user_id"),
    "socialaccount_socialtoken": (DISTRIBUTED, "user_id (to add)"),
    # activities
    "activities_partnercustomerlink": (DISTRIBUTED, "user_id"),
    "activities_activityrecord": (DISTRIBUTED, "user_id"),
    "activities_reviewdecision": (DISTRIBUTED, "user_id (to add)"),
    "activities_behaviourday": (DISTRIBUTED, "user_id"),
    "activities_behaviourmonth": (DISTRIBUTED, "user_id"),
    "activities_stepday": (DISTRIBUTED, "user_id"),
    "activities_deviceaccount": (DISTRIBUTED, "user_id"),
    "activities_dailycarbon": (DISTRIBUTED, "user_id"),
    "activities_statementnonce": (DISTRIBUTED, "user_id"),
    "activities_peersubject": (DISTRIBUTED, "user_id"),
    "activities_peerstatement": (DISTRIBUTED, "user_id"),
    "activities_importedinstance": (DISTRIBUTED, "user_id"),
    "activities_importedreduction": (DISTRIBUTED, "user_id (to add)"),
    "activities_mergecapcorrection": (DISTRIBUTED, "target_user_id"),
    # rewards: the ledger by the account's owner (system accounts become one clearing account a shard)
    "rewards_ledgeraccount": (DISTRIBUTED, "owner_id"),
    "rewards_ledgertransaction": (DISTRIBUTED, "owner_id (to add)"),
    "rewards_ledgerentry": (DISTRIBUTED, "owner_id (to add)"),
    "rewards_coinlot": (DISTRIBUTED, "owner_id (to add)"),
    "rewards_settlement": (DISTRIBUTED, "user_id"),
    "rewards_backfillsettlement": (DISTRIBUTED, "user_id"),
    "rewards_statementmint": (DISTRIBUTED, "user_id (to add)"),
    "rewards_donation": (DISTRIBUTED, "user_id"),
    "rewards_monthlyrating": (DISTRIBUTED, "user_id"),
    "rewards_badgeaward": (DISTRIBUTED, "user_id"),
    "rewards_badgeprogress": (DISTRIBUTED, "user_id"),
    "rewards_creditprofileconsent": (DISTRIBUTED, "user_id"),
    "rewards_creditprofileaccess": (DISTRIBUTED, "user_id"),
    "rewards_groupmembership": (DISTRIBUTED, "user_id"),
    "rewards_challengepayout": (DISTRIBUTED, "user_id"),
    # merchants: a person's coupons and counts
    "merchants_offerredemptioncount": (DISTRIBUTED, "user_id"),
    "merchants_coupon": (DISTRIBUTED, "user_id"),
    # registry: each person's grams in a lot
    "registry_lotallocation": (DISTRIBUTED, "user_id"),
    "registry_lotcontribution": (DISTRIBUTED, "user_id"),
    "registry_lotproceedsshare": (DISTRIBUTED, "user_id"),
    # Reference: small catalogs every shard joins
    "auth_group": (REFERENCE, ""),
    "auth_group_permissions": (REFERENCE, ""),
    "auth_permission": (REFERENCE, ""),
    "django_content_type": (REFERENCE, ""),
    "socialaccount_socialapp": (REFERENCE, ""),
    "accounts_district": (REFERENCE, ""),
    "accounts_agreement": (REFERENCE, ""),
    "accounts_wechattemplate": (REFERENCE, ""),
    "activities_behaviour": (REFERENCE, ""),
    "activities_methodologyversion": (REFERENCE, ""),
    "activities_factor": (REFERENCE, ""),
    "activities_partner": (REFERENCE, ""),
    "activities_partner_behaviours": (REFERENCE, ""),
    "activities_peerplatform": (REFERENCE, ""),
    "rewards_coinrate": (REFERENCE, ""),
    "rewards_welfareproject": (REFERENCE, ""),
    "rewards_badge": (REFERENCE, ""),
    "rewards_ratingthresholds": (REFERENCE, ""),
    "rewards_group": (REFERENCE, ""),
    "rewards_challengesponsor": (REFERENCE, ""),
    "rewards_teamchallenge": (REFERENCE, ""),
    "merchants_merchant": (REFERENCE, ""),
    "merchants_merchantstaff": (REFERENCE, ""),
    "merchants_offer": (REFERENCE, ""),
    "merchants_offer_districts": (REFERENCE, ""),
    # Local: the coordinator's operational tables, runs, global builds and the registry's lots
    "django_admin_log": (LOCAL, ""),
    "django_session": (LOCAL, ""),
    # Sessions are found by their key, on every request: they stay with the coordinator, as
    # django_session (left empty: the sessions moved to accounts_personsession) did.
    "accounts_personsession": (LOCAL, ""),
    "django_celery_beat_clockedschedule": (LOCAL, ""),
    "django_celery_beat_crontabschedule": (LOCAL, ""),
    "django_celery_beat_intervalschedule": (LOCAL, ""),
    "django_celery_beat_periodictask": (LOCAL, ""),
    "django_celery_beat_periodictasks": (LOCAL, ""),
    "django_celery_beat_solarschedule": (LOCAL, ""),
    "activities_rejectiontally": (LOCAL, ""),
    "rewards_settlementrun": (LOCAL, ""),
    "rewards_chunkedrun": (LOCAL, ""),
    "rewards_runchunk": (LOCAL, ""),
    "rewards_leaderboardbuild": (LOCAL, ""),
    "rewards_leaderboardentry": (LOCAL, ""),
    "rewards_ratingrun": (LOCAL, ""),
    "rewards_progressrefresh": (LOCAL, ""),
    "rewards_groupboardbuild": (LOCAL, ""),
    "rewards_groupboardentry": (LOCAL, ""),
    "rewards_groupmemberboardentry": (LOCAL, ""),
    "registry_reductionlot": (LOCAL, ""),
    "registry_lotbehaviour": (LOCAL, ""),
    "registry_serialcounter": (LOCAL, ""),
    "registry_lotexport": (LOCAL, ""),
    "registry_lotsale": (LOCAL, ""),
    "registry_lotretirement": (LOCAL, ""),
    "registry_lotevent": (LOCAL, ""),
}
