"""Per-person cached reads, kept right by tags that commits renew.

The calls the app makes each time it opens (who is signed in, their wallet, today's carbon, their
rank) read the same few rows again and again between changes. Each such *reading* is cached in
Redis per person, stored under the *tags* of the *sources* it was read from: a tag is a random
value in a key of its own, one per person and source (`user`, `carbon`, `ledger`), plus a shared
tag per source that a set-based path renews for everyone at once (a night's settlement), and
shared tags of what everyone reads (`methodology`). Whoever changes a source renews its tag
(`renew`) once its transaction commits. A cached value counts only while every tag it was stored
under is still the current one.

Why tags and not deleting the value: a reader that read the database before a writer's commit
could store what it read after the writer deleted the old value, and the stale value would stay.
Here a reader reads the tags *before* the database (in the same round trip as the session:
`accounts.sessions.session_prefetch`) and stores under those; a writer renews the tag *after* its
commit; so a value read before a commit, stored before or after the renewal, is under a tag that
the commit retired (and so is any value cached before the write started). A missing tag (expired,
Redis restarted) is made anew by the next reader (`SET NX`), which retires everything stored under
an older one.

What a tag cannot see: a write that commits and then fails to renew (Redis unreachable at that
moment, the process killed in between). Cached values therefore live `Reading.seconds` at most.
Through a Redis outage the readings come from the database (the cache fails open).

    WALLET = Reading("wallet", sources=("ledger", "carbon"), shared=("methodology",))
    keys = WALLET.keys(person_id)            # read them in one MGET with whatever else
    cached = WALLET.cached(person_id, found)  # found: key → decoded value of that MGET
    if cached.hit: return cached.value
    value = ...read the database...
    cached.store(value)

    renew("ledger", [person_id, ...])   # in the writer's transaction, after its change
    renew_everyone("carbon")            # a set-based path that changed many people's
"""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.core.cache import caches
from django.db import transaction
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# Tags outlive any value stored under them; a renewal resets the clock.
TAG_SECONDS = 24 * 3600
# Renewals sent per round trip on a path that renews many people.
RENEWALS_PER_ROUND_TRIP = 2000


def person_tag_key(source: str, person_id: int) -> str:
    return f"person-cache:tag:{source}:{person_id}"


def shared_tag_key(source: str) -> str:
    return f"person-cache:tag:{source}"


def _redis():
    """The default cache's Redis client (None when the cache is not Redis: nothing is cached)."""
    cache = caches["default"]
    client = getattr(cache, "client", None)
    if client is None or not hasattr(client, "get_client"):
        return None
    return client


def _new_tag() -> int:
    # An integer: the cache stores and reads it as digits, without pickling (read ten at a time).
    return secrets.randbits(62)


@dataclass(frozen=True)
class Reading:
    """What one cached read is read from: its person's `sources`, each source's shared tag, and the
    `shared` tags of what everyone reads. `seconds`: the longest a value lives. `parts`: the parts
    a value is kept under per person (a language, say), when its sources are renewed: a renewal
    deletes each of them."""

    name: str
    sources: tuple[str, ...]
    shared: tuple[str, ...] = ()
    seconds: int = 600
    parts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _READINGS.append(self)

    def value_key(self, person_id: int, part: str = "") -> str:
        return f"person-cache:{self.name}:{person_id}" + (f":{part}" if part else "")

    def value_keys(self, person_id: int) -> list[str]:
        """Every key a value of the person may be kept under (one per part, or the one)."""
        return [self.value_key(person_id, part) for part in self.parts or ("",)]

    def tag_keys(self, person_id: int) -> list[str]:
        return [person_tag_key(source, person_id) for source in self.sources] + [
            shared_tag_key(source) for source in (*self.sources, *self.shared)
        ]

    def keys(self, person_id: int, part: str = "") -> list[str]:
        """Every key `cached` needs: the value's, then its tags'."""
        return [self.value_key(person_id, part), *self.tag_keys(person_id)]

    def cached(self, person_id: int, found: Mapping[str, Any], part: str = "") -> Cached:
        """The value if `found` (an MGET of `keys`, decoded) holds one stored under the current tags."""
        tags = tuple(found.get(key) for key in self.tag_keys(person_id))
        stored = found.get(self.value_key(person_id, part))
        value = None
        hit = False
        if stored is not None and None not in tags:
            stored_tags, value = stored
            hit = stored_tags == tags
        return Cached(self, person_id, part, tags, value if hit else None, hit)

    def lookup(
        self, person_id: int, found: Mapping[str, Any], keys_read: Collection[str], part: str = ""
    ) -> Cached:
        """`cached` from a prefetch whose round trip asked for `keys_read`, when that covers this
        reading's keys; else `read`, with a round trip of its own."""
        keys = self.keys(person_id, part)
        if all(key in keys_read for key in keys):
            return self.cached(person_id, found, part)
        return self.read(person_id, part)

    def read(self, person_id: int, part: str = "") -> Cached:
        """`cached` with a round trip of its own (a path that did not read the keys beside its session)."""
        client = _redis()
        if client is None:
            return Cached(self, person_id, part, (), None, False)
        keys = self.keys(person_id, part)
        try:
            values = client.get_client(write=False).mget([client.make_key(key) for key in keys])
        except (RedisError, OSError):
            logger.warning("person cache read failed: redis unreachable")
            values = [None] * len(keys)
        found = {
            key: client.decode(value) for key, value in zip(keys, values, strict=True) if value is not None
        }
        return self.cached(person_id, found, part)


@dataclass(frozen=True)
class Cached:
    """One reading's lookup: the value when `hit`, else what `store` needs to cache a fresh one."""

    reading: Reading
    person_id: int
    part: str
    # The tags as read before the database, in `Reading.tag_keys` order (None: missing).
    tags: tuple[int | None, ...]
    value: Any
    hit: bool

    def store(self, value: Any) -> None:
        """Caches `value` (read from the database after the tags were) under the tags read.

        Missing tags are made first (`SET NX`); when another reader or a writer made one meanwhile,
        nothing is stored: the next read stores under the tag that won.
        """
        client = _redis()
        if client is None:
            return
        tag_keys = self.reading.tag_keys(self.person_id)
        tags = list(self.tags)
        try:
            redis = client.get_client(write=True)
            missing = [position for position, tag in enumerate(tags) if tag is None]
            if missing:
                pipeline = redis.pipeline(transaction=False)
                for position in missing:
                    tags[position] = _new_tag()
                    pipeline.set(
                        client.make_key(tag_keys[position]),
                        client.encode(tags[position]),
                        nx=True,
                        ex=TAG_SECONDS,
                    )
                if not all(pipeline.execute()):
                    return
            redis.set(
                client.make_key(self.reading.value_key(self.person_id, self.part)),
                client.encode((tuple(tags), value)),
                ex=self.reading.seconds,
            )
        except (RedisError, OSError):
            logger.warning("person cache store failed: redis unreachable")


# Every reading, so that a renewal also deletes the values it retires (what a person erased had in
# them must not linger in Redis until they expire).
_READINGS: list[Reading] = []


# One renewal round trip as one command: each tag set anew (with its lifetime), then the values it
# retires deleted. KEYS: the tags, then the values; ARGV: the lifetime, how many tags, the new tags.
_RENEWAL_SCRIPT = """
local tags = tonumber(ARGV[2])
for index = 1, tags do
    redis.call('SET', KEYS[index], ARGV[2 + index], 'EX', ARGV[1])
end
for start = tags + 1, #KEYS, 1000 do
    redis.call('UNLINK', unpack(KEYS, start, math.min(start + 999, #KEYS)))
end
return tags
"""


def _renew_keys(keys: list[tuple[str, list[str]]]) -> None:
    """Each (tag key, value keys): a new tag, and the values stored under the old one deleted.

    One command a round trip (a script, loaded once per Redis: the hot paths renew two people
    after every transfer, and a pipeline of a command per key cost twice the client's time)."""
    client = _redis()
    if client is None or not keys:
        return
    try:
        redis = client.get_client(write=True)
        script = _renewal_script(redis)
        for start in range(0, len(keys), RENEWALS_PER_ROUND_TRIP):
            batch = keys[start : start + RENEWALS_PER_ROUND_TRIP]
            script(
                keys=[client.make_key(tag_key) for tag_key, _ in batch]
                + [client.make_key(key) for _, value_keys in batch for key in value_keys],
                args=[TAG_SECONDS, len(batch), *(client.encode(_new_tag()) for _ in batch)],
                client=redis,
            )
    except (RedisError, OSError):
        logger.warning("person cache renewal failed: redis unreachable (cached readings expire on their own)")


@functools.cache
def _renewal_script(redis) -> Any:
    """The renewal script for this client: redis-py sends its digest, and the script itself once
    to a Redis that does not know it yet (a new or restarted server)."""
    return redis.register_script(_RENEWAL_SCRIPT)


def _renew_after_commit(keys: list[tuple[str, list[str]]]) -> None:
    """Renews once the transaction commits (now, outside one).

    Inside a test's transaction, which never commits (Django's test case marks its atomic blocks
    `_from_testcase`), now instead: the test then reads what a committed write would show.
    """
    connection = transaction.get_connection()
    never_commits = connection.in_atomic_block and getattr(
        connection.atomic_blocks[0], "_from_testcase", False
    )
    if not connection.in_atomic_block or never_commits:
        _renew_keys(keys)
    else:
        transaction.on_commit(lambda: _renew_keys(keys))


def shared_tag(
    source: str, found: Mapping[str, Any] | None = None, keys_read: Collection[str] = ()
) -> int | None:
    """The current shared tag of `source`, for a value everyone reads that is cached under it (its
    key names the tag): from a prefetch whose round trip read it (`found`, `keys_read`), else read;
    made when missing (`SET NX`, the tag that won is the one). None when the cache is not Redis or is
    unreachable."""
    key = shared_tag_key(source)
    if found is not None and key in keys_read and found.get(key) is not None:
        return found[key]
    client = _redis()
    if client is None:
        return None
    try:
        redis = client.get_client(write=True)
        redis.set(client.make_key(key), client.encode(_new_tag()), nx=True, ex=TAG_SECONDS)
        value = redis.get(client.make_key(key))
    except (RedisError, OSError):
        logger.warning("person cache read failed: redis unreachable")
        return None
    return client.decode(value) if value is not None else None


def renew(source: str, person_ids: Iterable[int | None]) -> None:
    """Retires what is cached of these people's `source`, once the transaction commits."""
    people = {person_id for person_id in person_ids if person_id is not None}
    readings = [reading for reading in _READINGS if source in reading.sources]
    _renew_after_commit(
        [
            (
                person_tag_key(source, person_id),
                [key for reading in readings for key in reading.value_keys(person_id)],
            )
            for person_id in sorted(people)
        ]
    )


def renew_everyone(source: str) -> None:
    """Retires what is cached of everyone's `source` (a set-based path, or what all read), once the
    transaction commits."""
    _renew_after_commit([(shared_tag_key(source), [])])
