"""Statements of format 2 list their instances under pairwise keys: a platform that saw the same bus
ride computes the same key from its own record without learning the ride's fields. An imported
statement does not count again an instance we already credited, a later report of an instance an
imported statement counts is a second report, and statements of format 1 still verify and import."""

from __future__ import annotations

import base64
import datetime
import json

import pytest
from django.conf import settings
from joserfc.jwk import OKPKey

from activities.history_import import COLUMNS
from activities.methodology import instance_identity, methodology_load
from activities.models import ActivityRecord, ImportedInstance, ImportedReduction, PeerStatement, RecordStatus
from activities.statements.instances import instance_scope, statement_instance_key
from core.crypto import platform_keys
from core.local_time import LOCAL_TZ
from tests.activities.conftest import credited_mg, ride
from tests.activities.peer_platform import LocalPeer, last_month
from tests.activities.test_bulk_import import csv_text, through_batch_path, through_chunked_import
from tests.activities.test_statements import OTHER_PEER, PEER, _signed, issue, verify
from tests.rewards.test_peer_statements import client_of, nonce_for, register, upload

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _partner_window(settings):
    settings.ACTIVITIES_PARTNER_WINDOW_DAYS = 120


@pytest.fixture
def riding(rider, transit, post_batch):
    """A person with two bus rides last month (no line named)."""
    day = last_month().replace(day=10)
    post_batch(transit, [ride("B1", at=at(day, 8)), ride("B2", at=at(day, 18))])
    return rider


@pytest.fixture
def peer():
    with LocalPeer().serving() as running:
        yield running


def at(day: datetime.date, hour: int, minute: int = 0, second: int = 0) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(hour, minute, second), tzinfo=LOCAL_TZ)


def on_line(record: dict, line: str) -> dict:
    return {**record, "instance": {"line": line}}


def bus_statement(peer, client, month, subject: str, instances: list[tuple[str, datetime.datetime, int]]):
    """A peer's statement of format 2 for `month`: bus rides (line, when, carbon), under its keys."""
    return peer.sign(bus_statement_claims(peer, month, subject, instances, nonce=nonce_for(client)))


def bus_statement_claims(
    peer, month, subject: str, instances: list[tuple[str, datetime.datetime, int]], *, nonce: str
) -> dict:
    bus = {
        "behaviour": "bus",
        "carbon_mg": sum(carbon for _, _, carbon in instances),
        "methodology_versions": [3],
        "standard": {"id": "T/ACEF 031-2022", "category": "travel", "behaviour": "公交出行"},
        "instances": sorted(
            (
                {
                    "key": key_seen_by_another_platform(
                        issuer=peer.issuer, audience=settings.STATEMENTS_ISSUER, subject=subject,
                        line=line, when=when,
                    ),
                    "carbon_mg": carbon,
                }
                for line, when, carbon in instances
            ),
            key=lambda instance: instance["key"],
        ),
    }  # fmt: skip
    claims = peer.claims(audience=settings.STATEMENTS_ISSUER, nonce=nonce, month=month)
    claims.update(version=2, sub=subject, reductions=[bus], total_carbon_mg=bus["carbon_mg"])
    return claims


def payload_of(token: str) -> str:
    return base64.urlsafe_b64decode(token.split(".")[1] + "==").decode()


def key_seen_by_another_platform(*, issuer: str, audience: str, subject: str, line: str, when) -> str:
    """What a platform running this protocol computes from its own record of a bus ride."""
    factor = methodology_load().factor_for(
        methodology_load().behaviours_by_code["bus"].id, when.astimezone(LOCAL_TZ).date()
    )
    digest, bucket = instance_identity(factor, {"line": line}, when)
    scope = instance_scope(issuer=issuer, audience=audience, subject=subject)
    return statement_instance_key(scope, behaviour="bus", instance_key=digest, bucket=bucket)


def test_a_statement_lists_its_instances_under_keys_pairwise_to_the_audience(
    rider, transit, post_batch, client_for
):
    month = last_month()
    when = at(month.replace(day=10), 8)
    line = "Line 7"  # no token can hold it by chance: base64url has no space
    post_batch(transit, [on_line(ride("B1", at=when), line), ride("B2", at=at(month.replace(day=10), 18))])

    here = issue(client_for(rider), month, audience=PEER)
    there = issue(client_for(rider), month, audience=OTHER_PEER)

    bus = here["claims"]["reductions"][0]
    assert (here["claims"]["version"], bus["behaviour"], bus["carbon_mg"]) == (2, "bus", 160_000)
    # The ride that names its line is listed; the one that does not is carbon without an instance.
    expected = key_seen_by_another_platform(
        issuer=settings.STATEMENTS_ISSUER, audience=PEER, subject=here["claims"]["sub"], line=line, when=when
    )
    assert bus["instances"] == [{"key": expected, "carbon_mg": 80_000}]
    assert len(expected) == 22
    # Another audience gets another key for the same ride; the line is in neither token.
    assert there["claims"]["reductions"][0]["instances"][0]["key"] != expected
    assert line not in payload_of(here["statement"])
    assert line not in payload_of(there["statement"])
    assert verify(here["statement"]).json()["valid"] is True


def test_an_imported_statement_does_not_count_again_a_ride_we_credited_and_later_reports_are_second(
    rider, transit, post_batch, peer
):
    month = last_month()
    ours, theirs = at(month.replace(day=10), 8), at(month.replace(day=12), 9)
    post_batch(transit, [on_line(ride("B1", at=ours), "L1")])
    assert credited_mg(rider) == 80_000
    register(peer, mints_coins=False)
    client = client_of(rider)
    subject = "peer-person-42"

    def peer_key(line: str, when) -> str:
        return key_seen_by_another_platform(
            issuer=peer.issuer, audience=settings.STATEMENTS_ISSUER, subject=subject, line=line, when=when
        )

    # The peer saw our ride 60 s later (a neighbouring bucket) and a ride we have not seen.
    bus = {
        "behaviour": "bus",
        "carbon_mg": 200_000,
        "methodology_versions": [3],
        "standard": {"id": "T/ACEF 031-2022", "category": "travel", "behaviour": "公交出行"},
        "instances": sorted(
            [
                {"key": peer_key("L1", ours + datetime.timedelta(seconds=60)), "carbon_mg": 90_000},
                {"key": peer_key("L2", theirs), "carbon_mg": 90_000},
            ],
            key=lambda instance: instance["key"],
        ),
    }
    claims = peer.claims(audience=settings.STATEMENTS_ISSUER, nonce=nonce_for(client), month=month)
    claims.update(version=2, sub=subject, reductions=[bus], total_carbon_mg=200_000)

    response = upload(client, peer.sign(claims))

    assert response.status_code == 201, response.json()
    statement = PeerStatement.objects.get(user=rider)
    assert (statement.stated_carbon_mg, statement.total_carbon_mg) == (200_000, 110_000)
    reduction = ImportedReduction.objects.get(statement=statement)
    assert (reduction.stated_carbon_mg, reduction.carbon_mg) == (200_000, 110_000)
    ours_record = ActivityRecord.objects.get(external_id="city-transit:B1")
    assert dict(ImportedInstance.objects.values_list("key", "credited_record")) == {
        peer_key("L1", ours + datetime.timedelta(seconds=60)): ours_record.id,
        peer_key("L2", theirs): None,
    }
    assert credited_mg(rider) == 80_000

    # Vice versa: our transit card reports the ride the peer's statement counts, 30 s off.
    answer = post_batch(
        transit, [on_line(ride("B2", at=theirs + datetime.timedelta(seconds=30)), "L2")]
    ).json()

    outcome = answer["records"][0]
    assert (outcome["status"], answer["duplicate_across_sources"]) == ("duplicate_across_sources", 1)
    assert outcome["credited_receipt"] == f"counted in the statement of Green Commute for {month:%Y-%m}"
    second = ActivityRecord.objects.get(external_id="city-transit:B2")
    assert (second.status, second.credited_carbon_mg, second.duplicate_of_id) == (
        RecordStatus.DUPLICATE,
        0,
        None,
    )
    assert second.imported_duplicate_of == ImportedInstance.objects.get(key=peer_key("L2", theirs))
    assert credited_mg(rider) == 80_000
    # Another ride on that line, far from the peer's, counts.
    later = post_batch(transit, [on_line(ride("B3", at=theirs + datetime.timedelta(hours=2)), "L2")]).json()
    assert later["records"][0]["status"] == "accepted"
    assert credited_mg(rider) == 160_000


def test_statements_of_format_1_still_verify_and_instances_need_format_2(riding, client_for):
    kid, private = platform_keys.ed25519_current()
    month = last_month()
    claims = issue(client_for(riding), month)["claims"]
    version_one = {name: value for name, value in claims.items() if name != "version"}
    for item in version_one["reductions"]:
        item.pop("instances", None)

    assert verify(_signed(version_one, key=OKPKey.import_key(private))).json()["valid"] is True
    with_instances = json.loads(json.dumps(version_one))
    with_instances["reductions"][0]["instances"] = [{"key": "A" * 22, "carbon_mg": 1}]
    refused = verify(_signed(with_instances, key=OKPKey.import_key(private))).json()
    assert refused["error"]["code"] == "statement_malformed"
    assert refused["error"]["fields"] == {"reductions/0/instances": ["format 2 only"]}


def test_instances_listed_twice_or_adding_up_to_more_than_the_carbon_are_malformed(riding, client_for):
    kid, private = platform_keys.ed25519_current()
    claims = issue(client_for(riding), last_month())["claims"]
    twice = json.loads(json.dumps(claims))
    twice["reductions"][0]["instances"] = [{"key": "A" * 22, "carbon_mg": 1}] * 2
    too_much = json.loads(json.dumps(claims))
    too_much["reductions"][0]["instances"] = [{"key": "A" * 22, "carbon_mg": 10**9}]

    answers = [verify(_signed(c, key=OKPKey.import_key(private))).json()["error"] for c in (twice, too_much)]

    assert [answer["fields"] for answer in answers] == [
        {"reductions/0/instances": ["a key is listed twice"]},
        {"reductions/0/instances": ["more carbon than the reduction"]},
    ]


def test_the_import_and_the_batch_path_agree_on_instances_an_imported_statement_counts(
    rider, transit, post_batch, peer, tmp_path
):
    month = last_month()
    ours, theirs = at(month.replace(day=10), 8), at(month.replace(day=12), 9)
    third = at(month.replace(day=14), 7)
    post_batch(transit, [on_line(ride("B1", at=ours), "L1")])
    register(peer, mints_coins=False)
    client = client_of(rider)
    statement = bus_statement(
        peer, client, month, "peer-person-42",
        [("L1", ours + datetime.timedelta(seconds=60), 90_000), ("L2", theirs, 90_000),
         ("L3", third, 70_000)],
    )  # fmt: skip
    assert upload(client, statement).status_code == 201
    counted = {i.key: i.id for i in ImportedInstance.objects.filter(credited_record__isnull=True)}

    def bus(record_id, when, line):
        return [record_id, "T-100", "bus", "1", when.isoformat(), "", line]

    rows = [
        bus("h1", theirs + datetime.timedelta(seconds=30), "L2"),  # the statement counts it
        bus("h2", theirs + datetime.timedelta(seconds=100), "L2"),  # 70 s after h1: a second report of it
        bus("h3", ours + datetime.timedelta(seconds=45), "L1"),  # our B1 holds it
        bus("h4", third + datetime.timedelta(seconds=10), "L3"),  # the statement counts it
        bus("h5", theirs + datetime.timedelta(hours=2), "L2"),  # another ride
        bus("h6", at(month.replace(day=13), 9), "L9"),  # a ride the peer did not see
        # (A day of only reports the statement counts has an empty counter row by the batch path alone.)
        bus("h7", third + datetime.timedelta(hours=3), "L8"),
    ]
    path = tmp_path / "rides.csv"
    path.write_text(csv_text(rows, header=[*COLUMNS, "instance.line"]))

    by_batch, batch_rejections = through_batch_path(transit, path)
    by_import, import_rejections, _ = through_chunked_import(transit, path, tmp_path)

    assert by_import == by_batch
    assert import_rejections == batch_rejections == []

    def key(line, when):
        return key_seen_by_another_platform(
            issuer=peer.issuer, audience=settings.STATEMENTS_ISSUER, subject="peer-person-42", line=line,
            when=when,
        )  # fmt: skip

    assert by_import["imported"] == [
        ("city-transit:h1", counted[key("L2", theirs)]),
        ("city-transit:h4", counted[key("L3", third)]),
    ]
    assert {(second, first) for second, first, _ in by_import["reports"]} == {
        ("city-transit:h2", "city-transit:h1"),
        ("city-transit:h3", "city-transit:B1"),
    }
    statuses = {r[0]: (r[8], r[6]) for r in by_import["records"]}
    assert {name: statuses[f"city-transit:{name}"] for name in [f"h{n}" for n in range(1, 8)]} == {
        "h1": ("duplicate", 0),
        "h2": ("duplicate", 0),
        "h3": ("duplicate", 0),
        "h4": ("duplicate", 0),
        "h5": ("credited", 80_000),
        "h6": ("credited", 80_000),
        "h7": ("credited", 80_000),
    }


def _held_ride_and_a_statement_listing_it(
    rider, transit, post_batch, peer, *, mints_coins: bool = False, unseen_ride: bool = True
):
    """Our held report of a bus ride on L1 (it overlaps an earlier ride: held for review) and an
    imported statement listing that ride (60 s off) and, if `unseen_ride`, one on L2 we have not
    seen, 90 g each; the peer mints coins (50 %) if `mints_coins`."""
    month = last_month()
    start = at(month.replace(day=10), 8)
    post_batch(transit, [ride("Y", at=start - datetime.timedelta(minutes=10), minutes=20)])
    post_batch(transit, [on_line(ride("H", at=start, minutes=20), "L1")])
    held = ActivityRecord.objects.get(external_id="city-transit:H")
    assert held.status == RecordStatus.HELD
    register(peer, mints_coins=mints_coins)
    subject = "peer-person-43"
    rides = [("L1", start + datetime.timedelta(seconds=60), 90_000)]
    if unseen_ride:
        rides.append(("L2", at(month.replace(day=12), 9), 90_000))
    claims = bus_statement_claims(peer, month, subject, rides, nonce=nonce_for(client_of(rider)))
    assert upload(client_of(rider), peer.sign(claims)).status_code == 201
    statement = PeerStatement.objects.get(user=rider)
    assert (statement.stated_carbon_mg, statement.total_carbon_mg) == (
        90_000 * len(rides),
        90_000 * (len(rides) - 1),
    )
    return held, statement, start


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_two_reviewers_rejecting_two_held_reports_a_statement_lists_give_both_back(
    rider, transit, post_batch, peer, monkeypatch
):
    import time

    from activities import services
    from operations.invariants import invariant_violations
    from tests.races import race

    # Two held reports of ours (each overlaps an earlier ride), on two days, both listed by one statement.
    month = last_month()
    starts = [at(month.replace(day=10), 8), at(month.replace(day=12), 8)]
    held = []
    for index, (start, line) in enumerate(zip(starts, ("L1", "L2"), strict=True)):
        post_batch(transit, [ride(f"Y{index}", at=start - datetime.timedelta(minutes=10), minutes=20)])
        post_batch(transit, [on_line(ride(f"H{index}", at=start, minutes=20), line)])
        held.append(
            ActivityRecord.objects.get(external_id=f"city-transit:H{index}", status=RecordStatus.HELD)
        )
    register(peer)
    rides = [
        (line, start + datetime.timedelta(seconds=60), 90_000)
        for line, start in zip(("L1", "L2"), starts, strict=True)
    ]
    claims = bus_statement_claims(peer, month, "peer-person-43", rides, nonce=nonce_for(client_of(rider)))
    assert upload(client_of(rider), peer.sign(claims)).status_code == 201
    statement = PeerStatement.objects.get(user=rider)
    assert (statement.stated_carbon_mg, statement.total_carbon_mg) == (180_000, 0)

    # Two reviewers reject them at the same moment, each transaction lingering a moment after its
    # hand-back (a slow notification), so the second's recount runs while the first is uncommitted.
    notify = services._decision_notify

    def slow_notify(record, *, decision):
        time.sleep(0.5)
        return notify(record, decision=decision)

    monkeypatch.setattr(services, "_decision_notify", slow_notify)
    outcomes = race(
        [
            lambda record=record: services.record_reject(record_id=record.id, reviewer=None, note="x")
            for record in held
        ]
    )

    assert not [outcome for outcome in outcomes if isinstance(outcome, Exception)]
    # Each ride is handed back: the statement counts both (the second recount saw the first's).
    statement.refresh_from_db()
    assert (
        statement.total_carbon_mg == ImportedReduction.objects.get(statement=statement).carbon_mg == 180_000
    )
    assert [violation for violation in invariant_violations() if violation.startswith("statement")] == []


def test_rejecting_our_held_report_an_import_matched_gives_the_statement_its_carbon_back(
    rider, transit, post_batch, peer
):
    from activities import errors, services
    from core.api.errors import ApplicationError

    held, statement, start = _held_ride_and_a_statement_listing_it(rider, transit, post_batch, peer)
    instance = ImportedInstance.objects.get(statement=statement, credited_record=held)

    services.record_reject(record_id=held.id, reviewer=None, note="a second card's ride")

    statement.refresh_from_db()
    assert (statement.stated_carbon_mg, statement.total_carbon_mg) == (180_000, 180_000)
    assert ImportedReduction.objects.get(statement=statement).carbon_mg == 180_000
    instance.refresh_from_db()
    assert (instance.credited_record_id, instance.handed_back_from_id) == (None, held.id)
    # The statement counts the ride now: the rejected report cannot be appealed back into holding it,
    # and a later report of the ride is a second report of the statement's instance.
    with pytest.raises(ApplicationError) as refused:
        services.record_appeal(user=rider, record_id=held.id, note="it was my ride")
    assert refused.value.error == errors.RECORD_NOT_APPEALABLE
    answer = post_batch(
        transit, [on_line(ride("H2", at=start + datetime.timedelta(seconds=30)), "L1")]
    ).json()
    assert answer["records"][0]["status"] == "duplicate_across_sources"
    assert ActivityRecord.objects.get(external_id="city-transit:H2").imported_duplicate_of == instance
    assert _statement_counted_violations() == []
    # What the shared checker sees when a rejected report keeps withholding the carbon.
    ImportedInstance.objects.filter(pk=instance.pk).update(credited_record=held)
    assert _statement_counted_violations() == [
        f"statement counted: imported reduction {statement.reductions.get().pk}: counts 180000 mg, "
        f"stated less the instances held here 90000",
        f"statement counted: imported instance {instance.pk}: counts 90000 mg, "
        f"held by rejected record {held.pk}",
    ]


def _statement_counted_violations() -> list[str]:
    from operations.invariants import invariant_violations

    return [violation for violation in invariant_violations() if violation.startswith("statement counted")]


def test_a_rejected_report_whose_instance_another_report_of_ours_takes_over_keeps_the_statement_as_it_was(
    rider, transit, post_batch, peer, authorize
):
    from accounts.models import DataSource
    from activities import services
    from activities.models import Factor

    Factor.objects.filter(behaviour__code="bus").update(
        sources=[DataSource.TRANSIT_CARD, DataSource.ONLINE_SERVICES],
        source_precedence=[DataSource.TRANSIT_CARD, DataSource.ONLINE_SERVICES],
    )
    authorize(rider, DataSource.ONLINE_SERVICES)
    app = services.partner_create(code="commute-app", name="commute-app", source=DataSource.ONLINE_SERVICES,
                                  behaviour_codes=["bus"])  # fmt: skip
    services.partner_customer_link(partner=app.partner, customer_reference="T-100", user=rider)
    held, statement, start = _held_ride_and_a_statement_listing_it(rider, transit, post_batch, peer)
    # The commuting app reports the same ride, 40 s later: a second report of our held one.
    answer = post_batch(app, [on_line(ride("A", at=start + datetime.timedelta(seconds=40)), "L1")]).json()
    assert answer["records"][0]["status"] == "duplicate_across_sources"

    services.record_reject(record_id=held.id, reviewer=None, note="a second card's ride")

    successor = ActivityRecord.objects.get(external_id="commute-app:A")
    assert successor.status == RecordStatus.CREDITED
    statement.refresh_from_db()
    assert statement.total_carbon_mg == 90_000
    instance = ImportedInstance.objects.get(
        statement=statement, key__isnull=False, credited_record__isnull=False
    )
    assert (instance.credited_record_id, instance.handed_back_from_id) == (successor.id, None)
