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
    FROM (
        SELECT daily.user_id, person.district_id,
               CAST(SUM(daily.credited_carbon_mg) AS BIGINT) AS carbon_mg
        FROM activities_dailycarbon AS daily
        JOIN accounts_user AS person ON person.id = daily.user_id
        WHERE daily.day >= %(start)s AND daily.day <= %(through)s
          AND person.shows_on_leaderboards AND person.is_active AND person.closed_at IS NULL
        GROUP BY daily.user_id, person.district_id
        HAVING SUM(daily.credited_carbon_mg) > 0
    ) AS scored
    -- Written in the order of the (build, person) index, which then grows at its end instead of
    -- taking two million inserts all over itself: a third of a city-wide rebuild's time.
    ORDER BY scored.user_id
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

# Limits a rule to people with carbon credited since a day (the hourly, incremental run).
RECENT_PEOPLE = sql.SQL(
    " AND daily.user_id IN (SELECT user_id FROM activities_dailycarbon WHERE day >= %(since)s)"
)

# Limits the first-behaviour rule to behaviour days since a day (the incremental run).
BEHAVIOUR_DAYS_SINCE = sql.SQL(" AND counter.day >= %(since)s")

# People with credited carbon of a behaviour (by code) on some day.
FIRST_BEHAVIOUR_QUALIFIED = sql.SQL(
    """
    SELECT DISTINCT counter.user_id FROM activities_behaviourday AS counter
    JOIN activities_behaviour AS behaviour ON behaviour.id = counter.behaviour_id
    WHERE behaviour.code = %(behaviour)s AND counter.credited_carbon_mg > 0{since}
    """
)

# People whose carbon credited in all reaches a threshold.
CARBON_TOTAL_QUALIFIED = sql.SQL(
    """
    SELECT daily.user_id FROM activities_dailycarbon AS daily
    WHERE true{recent}
    GROUP BY daily.user_id HAVING SUM(daily.credited_carbon_mg) >= %(carbon_mg)s
    """
)

# Every person's streaks (of the people `{people}` keeps) from their days, set-based: runs found by gaps
# and islands (day number − row number is constant along a run); the latest run and the longest
# stored, and the summary of a person with no active day left (every report rejected) removed.
STREAKS_REFRESH = sql.SQL(
    """
    WITH runs AS (
        SELECT islands.user_id, MIN(islands.day) AS run_start, MAX(islands.day) AS run_end,
               COUNT(*) AS days
        FROM (
            SELECT daily.user_id, daily.day,
                   (daily.day - DATE '2000-01-01')
                   - ROW_NUMBER() OVER (PARTITION BY daily.user_id ORDER BY daily.day) AS island
            FROM activities_dailycarbon AS daily
            WHERE daily.credited_carbon_mg > 0{people}
        ) AS islands
        GROUP BY islands.user_id, islands.island
    ),
    summaries AS (
        SELECT DISTINCT ON (user_id) user_id, run_start, run_end,
               MAX(days) OVER (PARTITION BY user_id) AS longest_days
        FROM runs ORDER BY user_id, run_end DESC
    ),
    stored AS (
        INSERT INTO rewards_personstreak (user_id, run_start, run_end, longest_days, refreshed_at)
        SELECT user_id, run_start, run_end, longest_days, %(now)s FROM summaries ORDER BY user_id
        ON CONFLICT (user_id) DO UPDATE SET
            run_start = EXCLUDED.run_start, run_end = EXCLUDED.run_end,
            longest_days = EXCLUDED.longest_days, refreshed_at = EXCLUDED.refreshed_at
        RETURNING user_id
    )
    DELETE FROM rewards_personstreak AS streak
    WHERE streak.user_id IN (SELECT daily.user_id FROM activities_dailycarbon AS daily WHERE true{people})
      AND streak.user_id NOT IN (SELECT user_id FROM stored)
    """
)

# The people a refresh looks at: one person (a merge), or everyone active since a day (the hourly run).
STREAKS_OF_PERSON = sql.SQL(" AND daily.user_id = %(person)s")

# One person's stored streaks (NULLs before the first badge run saw them) and their active days after
# the stored run, in order: one round trip, the days since the badge run rather than the history.
STREAKS_READ = sql.SQL(
    """
    SELECT streak.run_start, streak.run_end, streak.longest_days,
           ARRAY(
               SELECT daily.day FROM activities_dailycarbon AS daily
               WHERE daily.user_id = %(person)s AND daily.credited_carbon_mg > 0
                 AND daily.day > COALESCE(streak.run_end, DATE '-infinity')
               ORDER BY daily.day
           )
    FROM (SELECT) AS one LEFT JOIN rewards_personstreak AS streak ON streak.user_id = %(person)s
    """
)

# People whose longest streak reached `days` consecutive local days (`STREAKS_REFRESH` first).
STREAK_QUALIFIED = sql.SQL("SELECT user_id FROM rewards_personstreak WHERE longest_days >= %(days)s")

# People who donated coins to a welfare project.
FIRST_DONATION_QUALIFIED = sql.SQL("SELECT DISTINCT user_id FROM rewards_donation WHERE user_id IS NOT NULL")

# People rated at a level in a month whose rating is final (its run reached the month's last day).
AMBASSADOR_QUALIFIED = sql.SQL(
    """
    SELECT DISTINCT rating.user_id FROM rewards_monthlyrating AS rating
    JOIN rewards_ratingrun AS run ON run.month = rating.month
    WHERE rating.level = %(level)s
      AND run.through_day >= CAST(rating.month + INTERVAL '1 month' - INTERVAL '1 day' AS DATE)
    """
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
