"""The raw statements of leaderboards, badges, ratings and reports, composed with `psycopg.sql`.

Table, partition and index names are `sql.Identifier`s; values are the statements' named
parameters. The few numbers a DDL statement cannot take as a parameter (a partition's build id in
its CHECK and bounds, the top-50 bound of a partial index) are `sql.Literal`s of integers.
"""

from __future__ import annotations

from psycopg import sql

from rewards.models import LeaderboardEntry

ENTRIES = sql.Identifier(LeaderboardEntry._meta.db_table)

# --- Leaderboards ---------------------------------------------------------------------------

# A build's own table of entries: the parent's columns and defaults, unlogged (derived data), checked
# to hold only its build so that attaching it needs no scan; autovacuum off (written once, read by
# index, dropped whole).
ENTRIES_PARTITION_CREATE = sql.SQL(
    "CREATE UNLOGGED TABLE {partition} (LIKE {entries} INCLUDING DEFAULTS, CHECK (build_id = {build}))"
    " WITH (autovacuum_enabled = false)"
)

# Ranks everyone with carbon in the board's days into a build's table: city-wide and per district,
# ties broken by account age; opted-out, inactive and closed accounts and zero scores left out.
ENTRIES_RANK = sql.SQL(
    """
    INSERT INTO {partition}
        (build_id, user_id, district_id, carbon_mg, city_rank, district_rank)
    SELECT %(build)s, scored.user_id, scored.district_id, scored.carbon_mg,
           ROW_NUMBER() OVER (ORDER BY scored.carbon_mg DESC, scored.user_id),
           CASE WHEN scored.district_id IS NULL THEN NULL ELSE ROW_NUMBER() OVER (
               PARTITION BY scored.district_id ORDER BY scored.carbon_mg DESC, scored.user_id
           ) END
    FROM ({scored}) AS scored
    -- Written in the order of the (build, person) index, which then grows at its end instead of
    -- taking two million inserts all over itself: a third of a city-wide rebuild's time.
    ORDER BY scored.user_id
    """
)

# The scores of a period's board: each person's carbon credited on its days.
PERIOD_SCORES = sql.SQL(
    """
    SELECT daily.user_id, person.district_id, CAST(SUM(daily.credited_carbon_mg) AS BIGINT) AS carbon_mg
    FROM activities_dailycarbon AS daily
    JOIN accounts_user AS person ON person.id = daily.user_id
    WHERE daily.day >= %(start)s AND daily.day <= %(through)s
      AND person.shows_on_leaderboards AND person.is_active AND person.closed_at IS NULL
    GROUP BY daily.user_id, person.district_id
    HAVING SUM(daily.credited_carbon_mg) > 0
    """
)

# The scores of the all-time board: each person's progress (refreshed through the board's last
# day first), one row a person whatever the history.
PROGRESS_SCORES = sql.SQL(
    """
    SELECT progress.user_id, person.district_id, progress.carbon_mg
    FROM rewards_badgeprogress AS progress
    JOIN accounts_user AS person ON person.id = progress.user_id
    WHERE progress.carbon_mg > 0
      AND person.shows_on_leaderboards AND person.is_active AND person.closed_at IS NULL
    """
)

# Indexes a filled build's table as the parent declares (one sorted pass each; attaching then
# matches them instead of building them again) and attaches it as the build's partition.
ENTRIES_PARTITION_ATTACH = sql.SQL(
    """
    ALTER TABLE {partition} ADD CONSTRAINT {person} UNIQUE (build_id, user_id);
    CREATE UNIQUE INDEX {city_top} ON {partition} (build_id, city_rank)
        WHERE city_rank <= {top};
    CREATE INDEX {district_top} ON {partition} (build_id, district_id, district_rank)
        WHERE district_rank <= {top};
    ALTER TABLE {entries} ATTACH PARTITION {partition} FOR VALUES IN ({build});
    """
)

# Drops older builds' tables of entries, whole (no row-by-row delete to vacuum afterwards).
ENTRIES_PARTITIONS_DROP = sql.SQL("DROP TABLE IF EXISTS {partitions}")

# A person's city rank, district rank and score on a build, by the (build, person) unique index.
STANDING = sql.SQL(
    "SELECT city_rank, district_rank, carbon_mg FROM {entries} WHERE build_id = %s AND user_id = %s"
).format(entries=ENTRIES)

# --- Badges: each rule selects the `user_id` of everyone who qualifies ----------------------

# The hourly run's candidates: each (person, day) since `since` with carbon credited that the night
# has not settled yet (today's, and yesterday's until the settlement), found through the partial
# index of unsettled days (`daily_carbon_unsettled`): the days of the last hours, not the history.
RECENT_DAYS = sql.SQL(
    "SELECT user_id, day FROM activities_dailycarbon"
    " WHERE day >= %(since)s AND credited_carbon_mg > settled_carbon_mg"
)

# The people whose progress a run looks at: those of the recent days (hourly), or those whose
# progress a refresh changed after `%(gathered_after)s` (the one its badges last looked through; 0:
# everyone with progress) and those of the recent days (the full run).
RECENT_PEOPLE = sql.SQL("SELECT DISTINCT user_id FROM ({recent}) AS recent").format(recent=RECENT_DAYS)
CHANGED_AND_RECENT_PEOPLE = sql.SQL(
    "SELECT user_id FROM rewards_badgeprogress WHERE refresh_number > %(gathered_after)s"
    " UNION SELECT user_id FROM ({recent}) AS recent"
).format(recent=RECENT_DAYS)
ONE_PERSON = sql.SQL("SELECT CAST(%(person)s AS bigint) AS user_id")

# The runs of a person's days after their stored summary (`summary`, joined or NULL), folded on
# by gaps and islands (day number − row number is constant along a run): `later.days` are those days
# with carbon, in order; a run of them that starts the day after the summary's latest run goes on
# from it. Gives `tail`: the longest of the later runs and the latest (first and last day).
RUNS_AFTER_SUMMARY = sql.SQL(
    """
    LEFT JOIN LATERAL (
        SELECT MAX(island.run_end - island.run_start + 1) AS longest_days,
               MAX(island.run_start) AS run_start, MAX(island.run_end) AS run_end
        FROM (
            SELECT CASE WHEN MIN(numbered.day) = summary.run_end + 1 THEN summary.run_start
                        ELSE MIN(numbered.day) END AS run_start,
                   MAX(numbered.day) AS run_end
            FROM (
                SELECT day, (day - DATE '2000-01-01') - ROW_NUMBER() OVER (ORDER BY day) AS island
                FROM unnest(later.days) AS day
            ) AS numbered
            GROUP BY numbered.island
        ) AS island
    ) AS tail ON true
    """
)

# Each person's progress, of the people `{people}` selects: carbon credited in all, the longest run
# of consecutive active local days and the latest run. From the stored summary (`BadgeProgress`)
# and the person's days after its latest run (the unique (person, day) index). The summary's carbon
# is all on days up to its latest run, so a day credited after the summary counts at once if it is
# later than that run (yesterday's steps synced this morning, yesterday having had nothing); carbon
# credited on that run's days or before (more steps on a day already counted, an import of last
# quarter) waits for the next refresh. A person's cost is their days since the summary, not the
# history.
PROGRESS = sql.SQL(
    """
    SELECT person.user_id,
           COALESCE(summary.carbon_mg, 0) + later.carbon_mg AS carbon_mg,
           GREATEST(COALESCE(summary.longest_days, 0), COALESCE(tail.longest_days, 0)) AS longest_days,
           COALESCE(tail.run_start, summary.run_start) AS run_start,
           COALESCE(tail.run_end, summary.run_end) AS run_end
    FROM ({people}) AS person
    LEFT JOIN rewards_badgeprogress AS summary ON summary.user_id = person.user_id
    CROSS JOIN LATERAL (
        SELECT COALESCE(SUM(daily.credited_carbon_mg), 0) AS carbon_mg,
               ARRAY_AGG(daily.day ORDER BY daily.day) FILTER (WHERE daily.credited_carbon_mg > 0) AS days
        FROM activities_dailycarbon AS daily
        WHERE daily.user_id = person.user_id
          AND daily.day > COALESCE(summary.run_end, DATE '-infinity')
    ) AS later
    {runs}
    """
)


def progress_of(people: sql.Composable) -> sql.Composed:
    """`PROGRESS` of the people a statement selects."""
    return PROGRESS.format(people=people, runs=RUNS_AFTER_SUMMARY)


# One person's progress: the streak read (`GET /api/v1/badges`), prepared once per connection.
PROGRESS_OF_PERSON = progress_of(ONE_PERSON)

# --- The refresh of the progress (rewards.gamification.progress), one at a time ----------------

# The counting's lock, for a transaction: shared by the chunks that count (each a range of people of
# the one refresh that runs), exclusive for planning a refresh and for forgetting what was counted (a
# merge): neither happens while a chunk counts.
PROGRESS_LOCK_SHARED = sql.SQL("SELECT pg_advisory_xact_lock_shared(hashtext('rewards.progress'))")
PROGRESS_LOCK_EXCLUSIVE = sql.SQL("SELECT pg_advisory_xact_lock(hashtext('rewards.progress'))")

# The last person of the next chunk of uncounted days through `%(through)s` after person
# `%(after)s`: the person of the `%(rows)s`-th such day (all of that person's days join the chunk),
# by the partial index of uncounted days; NULL when none is left. A refresh is planned by these.
PROGRESS_CHUNK_END = sql.SQL(
    """
    SELECT MAX(next.user_id) FROM (
        SELECT user_id FROM activities_dailycarbon
        WHERE uncounted AND user_id > %(after)s AND day <= %(through)s
        ORDER BY user_id LIMIT %(rows)s
    ) AS next
    """
)
JIT_OFF = sql.SQL("SET LOCAL jit TO OFF")

# Counts the days through `%(through)s` of the people in (`%(after)s`, `%(upper)s`] whose credited
# carbon differs from what was counted (`uncounted`, the partial index `daily_carbon_uncounted`, on
# both sides of the join): each takes its credited carbon as counted, and the transaction's table
# `progress_changes` keeps what it was and is. What was counted is read from the statement's
# snapshot, which is exact: only the chunk of the one refresh running that covers a person writes
# it, once (`rewards.gamification.progress`). A day credited again while this runs is counted as it
# is when its row is locked; a day credited after the snapshot and not seen is left for the next
# refresh.
PROGRESS_CHANGES_DROP = sql.SQL("DROP TABLE IF EXISTS pg_temp.progress_changes, pg_temp.progress_people")
PROGRESS_COUNT = sql.SQL(
    """
    CREATE TEMPORARY TABLE progress_changes ON COMMIT DROP AS
    WITH counted AS (
        UPDATE activities_dailycarbon AS daily SET counted_carbon_mg = daily.credited_carbon_mg
        FROM activities_dailycarbon AS before
        WHERE before.id = daily.id
          AND before.uncounted AND before.user_id > %(after)s AND before.user_id <= %(upper)s
          AND before.day <= %(through)s
          AND daily.uncounted AND daily.user_id > %(after)s AND daily.user_id <= %(upper)s
          AND daily.day <= %(through)s
        RETURNING daily.user_id, daily.day, before.counted_carbon_mg AS was_mg,
                  daily.credited_carbon_mg AS now_mg
    )
    SELECT * FROM counted
    """
)

PROGRESS_CHANGES_ANALYZE = sql.SQL("ANALYZE progress_changes")

# The people whose days changed, with the carbon their counting changed by and the days that now
# have carbon and had none; `recount` for those whose runs of days the change may have cut or joined
# (a day now without carbon, a day with carbon on or before their latest run: an import of last
# quarter), and those without a summary. A closed
# account's days are counted, but it keeps no progress (erasure removed it).
PROGRESS_PEOPLE = sql.SQL(
    """
    CREATE TEMPORARY TABLE progress_people ON COMMIT DROP AS
    SELECT change.user_id, CAST(SUM(change.now_mg - change.was_mg) AS BIGINT) AS changed_mg,
           ARRAY_AGG(change.day ORDER BY change.day) FILTER (
               WHERE change.was_mg <= 0 AND change.now_mg > 0
           ) AS new_days,
           (summary.user_id IS NULL
            OR BOOL_OR(change.was_mg > 0 AND change.now_mg <= 0)
            OR BOOL_OR(change.was_mg <= 0 AND change.now_mg > 0 AND change.day <= summary.run_end)
           ) AS recount
    FROM progress_changes AS change
    JOIN accounts_user AS account ON account.id = change.user_id AND account.closed_at IS NULL
    LEFT JOIN rewards_badgeprogress AS summary ON summary.user_id = change.user_id
    GROUP BY change.user_id, summary.user_id, summary.run_end
    """
)

PROGRESS_PEOPLE_ANALYZE = sql.SQL("ANALYZE progress_people")
PROGRESS_RECOUNTED = sql.SQL("SELECT COUNT(*) FROM progress_people WHERE recount")

# Stores the progress of the people whose days changed: a summary folded on by the changed carbon
# and the runs of the days that now have carbon (all after its latest run, or the person would be
# recounted), or, for those to recount, from all their counted days (their history, once). A
# person left with no day of carbon loses the row.
PROGRESS_STORE = sql.SQL(
    """
    WITH progress AS (
        SELECT person.user_id,
               CASE WHEN person.recount THEN counted.carbon_mg
                    ELSE summary.carbon_mg + person.changed_mg END AS carbon_mg,
               GREATEST(COALESCE(summary.longest_days, 0), COALESCE(tail.longest_days, 0)) AS longest_days,
               COALESCE(tail.run_start, summary.run_start) AS run_start,
               COALESCE(tail.run_end, summary.run_end) AS run_end
        FROM progress_people AS person
        LEFT JOIN rewards_badgeprogress AS summary
          ON summary.user_id = person.user_id AND NOT person.recount
        CROSS JOIN LATERAL (
            SELECT COALESCE(SUM(daily.counted_carbon_mg), 0) AS carbon_mg,
                   ARRAY_AGG(daily.day ORDER BY daily.day) FILTER (WHERE daily.counted_carbon_mg > 0) AS days
            FROM activities_dailycarbon AS daily
            WHERE person.recount AND daily.user_id = person.user_id AND daily.day <= %(through)s
        ) AS counted
        CROSS JOIN LATERAL (
            SELECT CASE WHEN person.recount THEN counted.days ELSE person.new_days END AS days
        ) AS later
        {runs}
    ),
    stored AS (
        INSERT INTO rewards_badgeprogress
            (user_id, carbon_mg, run_start, run_end, longest_days, refresh_number)
        SELECT user_id, carbon_mg, run_start, run_end, longest_days, %(refresh)s
        FROM progress WHERE run_end IS NOT NULL ORDER BY user_id
        ON CONFLICT (user_id) DO UPDATE SET
            carbon_mg = EXCLUDED.carbon_mg, run_start = EXCLUDED.run_start, run_end = EXCLUDED.run_end,
            longest_days = EXCLUDED.longest_days, refresh_number = EXCLUDED.refresh_number
        RETURNING user_id
    )
    DELETE FROM rewards_badgeprogress AS progress USING progress_people AS person
    WHERE progress.user_id = person.user_id
      AND NOT EXISTS (SELECT FROM stored WHERE stored.user_id = progress.user_id)
    """
).format(runs=RUNS_AFTER_SUMMARY)

# Forgets what was counted of some people's days (`%(people)s`, an array of ids) and their progress:
# a merge, whose moved and capped days the next refresh counts again from all of them.
PROGRESS_FORGET = sql.SQL(
    """
    WITH uncounted AS (
        UPDATE activities_dailycarbon SET counted_carbon_mg = 0
        WHERE user_id = ANY(%(people)s) AND counted_carbon_mg <> 0
    )
    DELETE FROM rewards_badgeprogress WHERE user_id = ANY(%(people)s)
    """
)

# People with credited carbon of a behaviour (by code) on a day `{days}` selects (user_id, day):
# by the unique (person, behaviour, day) key.
FIRST_BEHAVIOUR_ON_DAYS = sql.SQL(
    """
    SELECT DISTINCT counter.user_id FROM ({days}) AS candidate
    JOIN activities_behaviourday AS counter
      ON counter.user_id = candidate.user_id AND counter.day = candidate.day
     AND counter.behaviour_id = (SELECT id FROM activities_behaviour WHERE code = %(behaviour)s)
    WHERE counter.credited_carbon_mg > 0
    """
)

# People with credited carbon of a behaviour (by code) on any day (the full run), of those
# whose progress a refresh changed after the one the badge last looked through (`%(looked)s`; 0 for
# everyone with progress): a probe of the unique (person, behaviour, day) key each, not the history.
FIRST_BEHAVIOUR_CHANGED = sql.SQL(
    """
    SELECT progress.user_id FROM rewards_badgeprogress AS progress
    WHERE progress.refresh_number > %(looked)s
      AND EXISTS (
          SELECT FROM activities_behaviourday AS counter
          WHERE counter.user_id = progress.user_id
            AND counter.behaviour_id = (SELECT id FROM activities_behaviour WHERE code = %(behaviour)s)
            AND counter.credited_carbon_mg > 0
      )
    """
)

# The progress of the people a run looks at (`{people}`), gathered once for every badge that reads it
# (`PROGRESS`), in a table of the run's transaction; an earlier run's is dropped first, for a caller
# whose transaction runs the job twice (the tests do).
PROGRESS_GATHER_DROP = sql.SQL("DROP TABLE IF EXISTS pg_temp.badge_progress")
PROGRESS_GATHER = sql.SQL("CREATE TEMPORARY TABLE badge_progress ON COMMIT DROP AS {progress}")

# People whose carbon credited in all reaches a threshold, of those the run gathered.
CARBON_TOTAL_QUALIFIED = sql.SQL("SELECT user_id FROM badge_progress WHERE carbon_mg >= %(carbon_mg)s")

# People whose longest streak reached `days` consecutive local days, of those the run gathered.
STREAK_QUALIFIED = sql.SQL("SELECT user_id FROM badge_progress WHERE longest_days >= %(days)s")

# People who donated coins to a welfare project (`{since}`: since a moment, the hourly run's or the
# one the badge last looked at; nothing, for a badge not looked at yet).
FIRST_DONATION_QUALIFIED = sql.SQL(
    "SELECT DISTINCT user_id FROM rewards_donation WHERE user_id IS NOT NULL{since}"
)
DONATED_SINCE = sql.SQL(" AND created_at >= %(since_moment)s")

# A day before the refresh of the progress a badge last looked through (`%(looked)s`) began: what
# the full run looks at again of what happened in time (donations, ratings made final), a margin
# no transaction stays open for.
LOOKED_MOMENT = sql.SQL(
    "(SELECT started_at - INTERVAL '1 day' FROM rewards_progressrefresh WHERE id = %(looked)s)"
)
DONATED_SINCE_LOOKED = sql.SQL(" AND created_at >= {moment}").format(moment=LOOKED_MOMENT)

# People rated at a level in a month whose rating is final (its run reached the month's last day);
# `{months}` keeps every such month (the full run, for a badge not looked at yet), those rated since
# the badge last looked (the full run), or the latest (hourly).
AMBASSADOR_QUALIFIED = sql.SQL(
    """
    SELECT DISTINCT rating.user_id FROM rewards_monthlyrating AS rating
    WHERE rating.level = %(level)s AND rating.month {months}
    """
)
# A rating run is final once it reached its month's last day (`RatingRun.is_final`).
_RUN_IS_FINAL = sql.SQL("run.through_day >= CAST(run.month + INTERVAL '1 month' - INTERVAL '1 day' AS DATE)")
FINAL_MONTHS = sql.SQL("IN (SELECT run.month FROM rewards_ratingrun AS run WHERE {final})").format(
    final=_RUN_IS_FINAL
)
FINAL_MONTHS_SINCE_LOOKED = sql.SQL(
    "IN (SELECT run.month FROM rewards_ratingrun AS run WHERE {final} AND run.finished_at >= {moment})"
).format(final=_RUN_IS_FINAL, moment=LOOKED_MOMENT)
LATEST_FINAL_MONTH = sql.SQL("= (SELECT MAX(run.month) FROM rewards_ratingrun AS run WHERE {final})").format(
    final=_RUN_IS_FINAL
)

# Awards a badge to everyone its rule `{qualified}` selects who has an open account, once per
# person (the unique (badge, person) key): a rerun or a concurrent run awards nothing twice.
BADGE_AWARD = sql.SQL(
    """
    INSERT INTO rewards_badgeaward (user_id, badge_id, awarded_at)
    SELECT qualified.user_id, %(badge)s, %(now)s FROM ({qualified}) AS qualified
    JOIN accounts_user AS person ON person.id = qualified.user_id
    WHERE person.closed_at IS NULL
    ON CONFLICT (badge_id, user_id) DO NOTHING
    """
)

# The notification rows (person, params, event key) of who got a badge in one award statement.
AWARDED_NOW = sql.SQL(
    "SELECT user_id, CAST(%(b_params)s AS jsonb), %(b_event)s FROM rewards_badgeaward"
    " WHERE badge_id = %(b_badge)s AND awarded_at = %(b_now)s"
)

# --- Monthly ratings ------------------------------------------------------------------------

# Two runs of one month at once (beat's daily job beside the rebuild that follows a settlement) take
# turns: each forgets the month's ratings and inserts them anew, which under READ COMMITTED would let
# the second insert meet the first's rows in the unique key. Held until the run commits.
MONTHLY_RATINGS_LOCK = sql.SQL(
    "SELECT pg_advisory_xact_lock(hashtextextended('rewards-ratings:' || %(month)s::text, 0))"
)

# Forgets a month's ratings before it is rated again.
MONTHLY_RATINGS_DELETE = sql.SQL("DELETE FROM rewards_monthlyrating WHERE month = %(month)s")

# Rates everyone who reduced at least the minimum in the month (their days, plus the statements of
# other platforms that count in the rating): RANK() gives how many reduced strictly more, COUNT(*)
# OVER () how many were rated, and the thresholds their share.
MONTHLY_RATINGS_INSERT = sql.SQL(
    """
    INSERT INTO rewards_monthlyrating (user_id, month, level, carbon_mg, city_rank, share_above_bp)
    SELECT ranked.user_id, %(month)s,
           CASE WHEN ranked.above * 100 < %(dark)s * ranked.rated THEN %(dark_green)s
                WHEN ranked.above * 100 < %(medium)s * ranked.rated THEN %(medium_green)s
                ELSE %(light_green)s END,
           ranked.carbon_mg, ranked.city_rank,
           CAST(ranked.above * 10000 / ranked.rated AS INTEGER)
    FROM (
        SELECT monthly.user_id, monthly.carbon_mg,
               RANK() OVER (ORDER BY monthly.carbon_mg DESC) - 1 AS above,
               ROW_NUMBER() OVER (ORDER BY monthly.carbon_mg DESC, monthly.user_id) AS city_rank,
               COUNT(*) OVER () AS rated
        FROM (
            SELECT carbon.user_id, CAST(SUM(carbon.carbon_mg) AS BIGINT) AS carbon_mg
            FROM (
                SELECT user_id, credited_carbon_mg AS carbon_mg FROM activities_dailycarbon
                WHERE day >= %(month)s AND day <= %(through)s
                UNION ALL
                SELECT statement.user_id, statement.total_carbon_mg
                FROM activities_peerstatement AS statement
                JOIN activities_peerplatform AS peer ON peer.id = statement.peer_id
                WHERE statement.month = %(month)s AND peer.counts_in_rating
            ) AS carbon
            JOIN accounts_user AS person ON person.id = carbon.user_id
            WHERE person.is_active AND person.closed_at IS NULL
            GROUP BY carbon.user_id
            HAVING SUM(carbon.carbon_mg) >= %(minimum)s
        ) AS monthly
    ) AS ranked
    """
)

# How many people of a month were rated at each level.
MONTHLY_RATING_COUNTS = sql.SQL(
    "SELECT level, COUNT(*) FROM rewards_monthlyrating WHERE month = %(month)s GROUP BY level"
)

# The notification rows (person, params, event key) of everyone who reduced carbon in a month.
ACTIVE_IN_MONTH = sql.SQL(
    "SELECT user_id, CAST(%(m_params)s AS jsonb), %(m_event)s FROM activities_dailycarbon"
    " WHERE day >= %(m_first)s AND day <= %(m_last)s GROUP BY user_id HAVING SUM(credited_carbon_mg) > 0"
)

# --- Reports --------------------------------------------------------------------------------

# Per district (NULL: no district), how many people reduced anything in a period and their carbon:
# their days plus the statements of other platforms that count in reports.
PERIOD_AVERAGES = sql.SQL(
    """
    SELECT person.district_id, COUNT(*), CAST(SUM(totals.carbon_mg) AS BIGINT)
    FROM (
        SELECT user_id, SUM(carbon_mg) AS carbon_mg FROM (
            SELECT user_id, credited_carbon_mg AS carbon_mg FROM activities_dailycarbon
            WHERE day >= %(first)s AND day <= %(last)s
            UNION ALL
            SELECT statement.user_id, statement.total_carbon_mg
            FROM activities_peerstatement AS statement
            JOIN activities_peerplatform AS peer ON peer.id = statement.peer_id
            WHERE peer.counts_in_report
              AND statement.month >= %(first_month)s AND statement.month <= %(last)s
        ) AS carbon GROUP BY user_id HAVING SUM(carbon_mg) > 0
    ) AS totals JOIN accounts_user AS person ON person.id = totals.user_id
    GROUP BY person.district_id
    """
)
