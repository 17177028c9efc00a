"""The per-person cache's tags: a value counts only while every tag it was stored under is current."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import transaction

from core.person_cache import (
    RENEWALS_PER_ROUND_TRIP,
    TAG_SECONDS,
    Reading,
    person_tag_key,
    renew,
    renew_everyone,
)

# Real Redis (the suite's); each test starts from an empty cache (tests/conftest.py).
pytestmark = pytest.mark.django_db(transaction=True)

PROFILE = Reading("test-profile", sources=("test-profile",), shared=("test-shared",))
BOARD = Reading("test-board", sources=())
BY_LANGUAGE = Reading("test-by-language", sources=("test-profile",), parts=("zh-hans", "en"))


def _stored_keys() -> list[str]:
    return sorted(key for key in cache.keys("person-cache:*"))


def test_a_stored_value_is_read_back_until_its_source_is_renewed():
    PROFILE.read(7).store({"name": "first"})

    assert PROFILE.read(7).hit
    assert PROFILE.read(7).value == {"name": "first"}

    renew("test-profile", [7])

    assert not PROFILE.read(7).hit


def test_a_renewal_retires_only_the_people_named():
    PROFILE.read(7).store("seven")
    PROFILE.read(8).store("eight")

    renew("test-profile", [7])

    assert (PROFILE.read(7).hit, PROFILE.read(8).value) == (False, "eight")


def test_renewing_everyone_retires_every_person_s_value():
    PROFILE.read(7).store("seven")
    PROFILE.read(8).store("eight")

    renew_everyone("test-profile")

    assert (PROFILE.read(7).hit, PROFILE.read(8).hit) == (False, False)


def test_a_shared_tag_renewed_retires_every_value_read_with_it():
    PROFILE.read(7).store("seven")

    renew_everyone("test-shared")

    assert not PROFILE.read(7).hit


def test_a_value_read_before_a_writer_s_commit_and_stored_after_it_is_never_used():
    # The reader reads the tags, then the database (the old value); the writer commits and renews;
    # only then does the reader store what it read.
    lookup = PROFILE.read(7)
    renew("test-profile", [7])
    lookup.store("read before the commit")

    assert not PROFILE.read(7).hit


def test_a_reader_who_finds_no_tag_makes_one_and_a_second_reader_racing_it_stores_nothing():
    first, second = PROFILE.read(7), PROFILE.read(7)
    assert None in first.tags  # a new person: no tag yet

    first.store("first")
    second.store("second")  # its SET NX of the tag lost: nothing stored

    assert PROFILE.read(7).value == "first"


def test_a_renewal_deletes_the_values_it_retires():
    PROFILE.read(7).store({"nickname": "someone erased"})
    assert "person-cache:test-profile:7" in _stored_keys()

    renew("test-profile", [7])

    assert not [key for key in _stored_keys() if key.startswith("person-cache:test-profile:")]


def test_a_renewal_deletes_the_values_of_every_part_it_retires():
    BY_LANGUAGE.read(7, "zh-hans").store("今天")
    BY_LANGUAGE.read(7, "en").store("today")
    assert BY_LANGUAGE.read(7, "en").hit

    renew("test-profile", [7])

    assert not [key for key in _stored_keys() if key.startswith("person-cache:test-by-language:")]


def test_a_renewal_of_more_people_than_one_round_trip_takes_retires_and_deletes_them_all():
    people = range(RENEWALS_PER_ROUND_TRIP + 500)
    for person_id in people:
        BY_LANGUAGE.read(person_id, "en").store(person_id)
    tags_before = {
        key: cache.get(key)
        for key in (person_tag_key("test-profile", 0), person_tag_key("test-profile", 2_400))
    }

    renew("test-profile", people)

    assert not [key for key in _stored_keys() if key.startswith("person-cache:test-by-language:")]
    assert all(cache.get(key) not in (None, tag) for key, tag in tags_before.items())
    assert cache.ttl(person_tag_key("test-profile", 2_400)) > TAG_SECONDS - 60


def test_a_renewal_reaches_a_redis_that_has_forgotten_its_script():
    PROFILE.read(7).store("before the restart")
    renew("test-profile", [8])  # the script is known to this Redis now
    cache.client.get_client(write=True).script_flush()  # as after a restart

    renew("test-profile", [7])

    assert not PROFILE.read(7).hit


def test_a_renewal_inside_a_transaction_is_made_once_it_commits():
    PROFILE.read(7).store("before the write")
    with transaction.atomic():
        renew("test-profile", [7])
        # Until the commit, readers see the database as it was: so may the cache.
        assert PROFILE.read(7).value == "before the write"
        # A reader between the write and the commit stores what it read under the same tag.
        PROFILE.read(7).store("read before the commit")

    assert not PROFILE.read(7).hit


def test_a_renewal_in_a_transaction_that_rolls_back_is_never_made():
    PROFILE.read(7).store("kept")
    try:
        with transaction.atomic():
            renew("test-profile", [7])
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass

    assert PROFILE.read(7).value == "kept"


def test_a_reading_without_sources_keeps_its_value_by_part():
    BOARD.read(7, "build-1").store((3, 1, 5_000))

    assert BOARD.read(7, "build-1").value == (3, 1, 5_000)
    assert not BOARD.read(7, "build-2").hit


def test_lookup_uses_a_prefetch_that_read_its_keys_and_reads_itself_otherwise():
    PROFILE.read(7).store("cached")
    keys = PROFILE.keys(7)
    found = {key: cache.get(key) for key in keys}

    assert PROFILE.lookup(7, found, keys_read=set(keys)).value == "cached"
    # A prefetch that did not ask for these keys: the lookup reads them itself.
    assert PROFILE.lookup(7, {}, keys_read=set()).value == "cached"
    # One that asked and found nothing: a miss, without another round trip.
    assert not PROFILE.lookup(7, {}, keys_read=set(keys)).hit
