"""Lag-tolerant reads on a real streaming replica, and read-your-writes for the person who wrote.

The test starts a PostgreSQL primary and a streaming replica of it (`pg_basebackup -R`) from the
machine's PostgreSQL binaries (/usr/lib/postgresql/*/bin), loads the test database's schema into
the primary, points the `default` alias at that primary and adds a `replica` alias for the
standby. Replay on the replica is then paused, so it lags as far as the test wants.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import psycopg
import pytest
from django.core.cache import cache
from django.db import connections, transaction
from django.http import HttpResponse
from django.test import RequestFactory, override_settings
from django.utils import timezone

from accounts.models import User
from core.db_routing import REPLICA, ReplicaRoutingMiddleware
from merchants.models import Offer
from merchants.services import catalog_offers, offer_pause
from rewards.gamification.leaderboards import (
    Scope,
    Standing,
    board_for,
    friends_board,
    leaderboard_rebuild,
    local_cache_clear,
)
from rewards.models import LeaderboardBuild
from tests.accounts.factories import UserFactory
from tests.merchants.factories import OfferFactory
from tests.rewards.factories import carbon_credit
from tests.services import _free_port

pytestmark = pytest.mark.django_db(transaction=True)

T = TypeVar("T")

PROGRAMS = ("initdb", "pg_ctl", "pg_basebackup", "pg_dump", "psql", "postgres")


def postgresql_bin() -> Path | None:
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if all((Path(folder) / program).exists() for program in PROGRAMS):
            return Path(folder)
    return None


def why_no_replica() -> str | None:
    if postgresql_bin() is None:
        return f"no PostgreSQL binaries ({', '.join(PROGRAMS)}) under /usr/lib/postgresql/*/bin"
    if os.geteuid() == 0 and (shutil.which("runuser") is None or _postgres_uid() is None):
        return "running as root without `runuser` and a `postgres` user: initdb refuses to run as root"
    return None


def _postgres_uid() -> int | None:
    import pwd

    try:
        return pwd.getpwnam("postgres").pw_uid
    except KeyError:
        return None


class Cluster:
    """A throwaway cluster on a free loopback port, run as the `postgres` user when we are root."""

    def __init__(self, folder: Path, name: str) -> None:
        self.bin = postgresql_bin()
        self.data = folder / name
        self.port = _free_port()
        self.folder = folder

    def run(self, program: str, *arguments: str) -> None:
        command = [str(self.bin / program), *arguments]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.folder}"
        self.run("pg_ctl", "start", "-w", "-D", str(self.data), "-l", f"{self.data}.log", "-o", options)

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self.run("pg_ctl", "stop", "-m", "immediate", "-D", str(self.data))

    def conninfo(self, database: str = "carbon") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"


@pytest.fixture
def primary_and_replica() -> Iterator[tuple[Cluster, Cluster]]:
    if reason := why_no_replica():
        pytest.skip(reason)
    folder = Path(tempfile.mkdtemp(prefix="carbon-replica-"))
    if os.geteuid() == 0:
        os.chown(folder, _postgres_uid(), -1)
    primary, replica = Cluster(folder, "primary"), Cluster(folder, "replica")
    try:
        primary.run("initdb", "-D", str(primary.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        primary.start()
        with psycopg.connect(primary.conninfo("postgres"), autocommit=True) as admin:
            admin.execute("CREATE DATABASE carbon")
        schema = folder / "schema.sql"
        test_database = connections["default"].settings_dict
        subprocess.run(
            [
                str(primary.bin / "pg_dump"),
                "--schema-only",
                "--no-owner",
                "--no-privileges",
                f"--dbname=host={test_database['HOST'] or '127.0.0.1'} port={test_database['PORT'] or 5432} "
                f"user={test_database['USER']} dbname={test_database['NAME']}",
                f"--file={schema}",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        subprocess.run(
            [
                str(primary.bin / "psql"),
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                primary.conninfo(),
                "-f",
                str(schema),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        replica.run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
            # A fast checkpoint: an idle new cluster would otherwise spread it over minutes.
            "-D", str(replica.data), "-R", "-X", "stream", "--checkpoint=fast",
        )  # fmt: skip
        replica.start()
        yield primary, replica
    finally:
        replica.stop()
        primary.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def routed_to(primary_and_replica) -> Iterator[tuple[Cluster, Cluster]]:
    """`default` is the throwaway primary and `replica` its standby, for this test only."""
    primary, replica = primary_and_replica
    default = connections["default"]
    default.close()
    saved = dict(default.settings_dict)
    default.settings_dict.update(HOST="127.0.0.1", PORT=str(primary.port), NAME="carbon", USER="postgres")
    connections.settings[REPLICA] = {**default.settings_dict, "PORT": str(replica.port)}
    # Connected here: the test case only lets connections it was told of at its start connect later.
    connections[REPLICA].connect()
    cache.clear()
    try:
        yield primary, replica
    finally:
        connections[REPLICA].close()
        del connections[REPLICA]
        del connections.settings[REPLICA]
        default.close()
        default.settings_dict.clear()
        default.settings_dict.update(saved)


def _replayed(replica: Cluster, offer_id: int) -> bool:
    with psycopg.connect(replica.conninfo(), autocommit=True) as probe:
        return probe.execute("SELECT 1 FROM merchants_offer WHERE id = %s", [offer_id]).fetchone() is not None


def _replay(replica: Cluster, *, paused: bool) -> None:
    with psycopg.connect(replica.conninfo(), autocommit=True) as probe:
        probe.execute("SELECT pg_wal_replay_pause()" if paused else "SELECT pg_wal_replay_resume()")


def _read_in_request(user, read: Callable[[], T], *, method: str = "get") -> T:
    """What `read` returns in a request by `user`, through the middleware and the router."""
    seen: list[T] = []

    def view(request) -> HttpResponse:
        seen.append(read())
        return HttpResponse()

    request = getattr(RequestFactory(), method)("/api/v1/catalog/offers")
    request.user = user
    ReplicaRoutingMiddleware(view)(request)
    return seen[0]


def _offer_title_seen(user, offer_id: int, *, method: str = "get") -> str:
    """What a request by `user` reads of the offer."""
    return _read_in_request(user, lambda: Offer.objects.get(pk=offer_id).title, method=method)


def _catalog_titles_seen(user) -> list[str]:
    """The titles a request by `user` finds in the catalog's first page (cached for everyone)."""
    return _read_in_request(user, lambda: [offer["title"] for offer in catalog_offers()])


def _build_replayed(replica: Cluster, build_id: int) -> bool:
    with psycopg.connect(replica.conninfo(), autocommit=True) as probe:
        query = "SELECT 1 FROM rewards_leaderboardbuild WHERE id = %s AND finished_at IS NOT NULL"
        return probe.execute(query, [build_id]).fetchone() is not None


def _board_of_two_streamed(replica: Cluster) -> tuple[User, User, LeaderboardBuild]:
    """Two people with carbon today, the first ahead, on today's board built and streamed to the
    replica; this process's copies of boards forgotten."""
    local_cache_clear()
    first, second = UserFactory(), UserFactory()
    carbon_credit(first, timezone.localdate(), 20_000)
    carbon_credit(second, timezone.localdate(), 10_000)
    build = leaderboard_rebuild(period="today").build
    _wait_for(lambda: _build_replayed(replica, build.pk), "the replica to replay the board's build")
    return first, second, build


def _board_seen(user) -> tuple[int | None, list[int]]:
    """Today's city board as `user` reads it: its version (the build) and who is on it, in order."""
    board = board_for(user=user, period="today", scope=Scope.CITY)
    return board.version, [entry["user_id"] for entry in board.entries]


def _wait_for(predicate, what: str) -> None:
    deadline = time.monotonic() + 30
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@override_settings(DATABASE_REPLICA_PIN_SECONDS=2)
def test_lag_tolerant_reads_come_from_the_replica_and_whoever_wrote_reads_the_primary(routed_to):
    # Given an offer streamed to the replica, whose replay then stops (a replica lagging)
    primary, replica = routed_to
    writer, reader = UserFactory(), UserFactory()
    offer = OfferFactory(title="Coffee")
    _wait_for(lambda: _replayed(replica, offer.pk), "the replica to replay the offer")
    _replay(replica, paused=True)

    # When the writer changes it in a request
    def rename(request) -> HttpResponse:
        Offer.objects.filter(pk=offer.pk).update(title="Tea")
        return HttpResponse()

    request = RequestFactory().post("/api/v1/merchant/offers")
    request.user = writer
    ReplicaRoutingMiddleware(rename)(request)

    # Then the writer's next reads are the primary's, another person's the replica's
    assert _offer_title_seen(writer, offer.pk) == "Tea"
    assert _offer_title_seen(reader, offer.pk) == "Coffee"
    # And so are an unsafe request's reads, a transaction's, and those outside any request
    assert _offer_title_seen(reader, offer.pk, method="post") == "Tea"
    with transaction.atomic():
        assert _offer_title_seen(reader, offer.pk) == "Tea"
    assert Offer.objects.get(pk=offer.pk).title == "Tea"

    # When the pin runs out, the writer reads the (still lagging) replica too
    time.sleep(2.5)
    assert _offer_title_seen(writer, offer.pk) == "Coffee"

    # And once replay resumes, everyone reads the change from the replica
    _replay(replica, paused=False)
    _wait_for(lambda: _offer_title_seen(reader, offer.pk) == "Tea", "the replica to catch up")


def test_models_not_declared_lag_tolerant_always_read_the_primary(routed_to):
    primary, replica = routed_to
    _replay(replica, paused=True)
    # A person the replica has not seen: read from there, they would not exist.
    person = UserFactory(username="before")
    seen: list[str] = []

    def view(request) -> HttpResponse:
        seen.append(type(person).objects.get(pk=person.pk).username)
        return HttpResponse()

    request = RequestFactory().get("/api/v1/me")
    request.user = UserFactory()
    ReplicaRoutingMiddleware(view)(request)

    assert seen == ["before"]


def test_a_catalog_page_built_while_the_replica_lags_lists_what_the_primary_does(routed_to):
    # Given a live offer streamed to the replica and listed on the catalog's cached page
    primary, replica = routed_to
    merchant_person, reader = UserFactory(), UserFactory()
    offer = OfferFactory(title="Coffee")
    _wait_for(lambda: _replayed(replica, offer.pk), "the replica to replay the offer")
    assert _catalog_titles_seen(reader) == ["Coffee"]

    # When the replica lags while the merchant pauses the offer (a new catalog version), and a
    # reader's request then misses the page of that version
    _replay(replica, paused=True)

    def pause(request) -> HttpResponse:
        offer_pause(offer=Offer.objects.get(pk=offer.pk))
        return HttpResponse()

    request = RequestFactory().post("/api/v1/merchant/offers/pause")
    request.user = merchant_person
    ReplicaRoutingMiddleware(pause)(request)
    paused_page = _catalog_titles_seen(reader)

    # Then the page was built from the primary: the paused offer is not listed, to the reader or
    # to the merchant, neither now nor once the replica has caught up
    assert paused_page == []
    _replay(replica, paused=False)
    _wait_for(
        lambda: Offer.objects.using(REPLICA).get(pk=offer.pk).status == Offer.Status.PAUSED,
        "the replica to catch up",
    )
    assert _catalog_titles_seen(merchant_person) == []
    assert _catalog_titles_seen(reader) == []


def test_a_board_is_read_from_the_primary_s_entries_while_a_replica_serves_its_build(routed_to):
    # Given today's board built and streamed to the replica (its entries are unlogged: the replica
    # has the build, not its entries)
    primary, replica = routed_to
    reader = UserFactory()
    first, second, build = _board_of_two_streamed(replica)

    # When a reader's request reads it, then the reader's friends' board (not cached)
    board = _read_in_request(reader, lambda: _board_seen(reader))
    friends = _read_in_request(reader, lambda: friends_board(build_id=build.pk, user=reader))

    # Then both are read, from the primary's entries
    assert board == (build.pk, [first.pk, second.pk])
    assert friends == ([], Standing(rank=None, carbon_mg=0))


def test_a_board_s_pointer_read_while_the_replica_lags_names_the_newest_build(routed_to):
    # Given today's board built and streamed to the replica, then rebuilt while the replica lags
    # (one person overtook the other), and the pointer to the newest build gone from the cache
    # (its five minutes ran out)
    primary, replica = routed_to
    reader = UserFactory()
    first, second, _older = _board_of_two_streamed(replica)
    _replay(replica, paused=True)
    carbon_credit(second, timezone.localdate(), 30_000)
    newest = leaderboard_rebuild(period="today").build
    cache.clear()
    local_cache_clear()

    # When a reader's request misses the pointer
    _read_in_request(reader, lambda: _board_seen(reader))

    # Then the pointer was read from the primary: the board is the newest build, now and once the
    # replica has caught up (read by another process of the app)
    _replay(replica, paused=False)
    _wait_for(lambda: _build_replayed(replica, newest.pk), "the replica to replay the newest build")
    local_cache_clear()
    assert _read_in_request(reader, lambda: _board_seen(reader)) == (newest.pk, [second.pk, first.pk])
