"""The merge of two accounts (`activities.personal_data.accounts_merge`)."""

from __future__ import annotations

from psycopg import sql

MERGED_STEP_DAYS_ADD = sql.SQL(
    """
    INSERT INTO activities_stepday (user_id, day, steps, previous_steps, updated_at)
    SELECT %s, day, steps, previous_steps, updated_at FROM activities_stepday WHERE user_id = %s
    ORDER BY day
    ON CONFLICT (user_id, day) DO UPDATE
    SET steps = CASE WHEN EXCLUDED.steps > activities_stepday.steps
                THEN EXCLUDED.steps ELSE activities_stepday.steps END
    """
)

MERGED_DEVICES_ADD = sql.SQL(
    """
    INSERT INTO activities_deviceaccount (device_id, user_id, first_seen_at)
    SELECT device_id, %s, first_seen_at FROM activities_deviceaccount WHERE user_id = %s
    ON CONFLICT (device_id, user_id) DO NOTHING
    """
)

MERGED_BEHAVIOUR_DAYS_ADD = sql.SQL(
    """
    INSERT INTO activities_behaviourday
        (user_id, behaviour_id, day, quantity, record_count, held_count, credited_carbon_mg)
    SELECT %s, behaviour_id, day, quantity, record_count, held_count, credited_carbon_mg
    FROM activities_behaviourday WHERE user_id = %s ORDER BY behaviour_id, day
    ON CONFLICT (user_id, behaviour_id, day) DO UPDATE
    SET quantity = activities_behaviourday.quantity + EXCLUDED.quantity,
        record_count = activities_behaviourday.record_count + EXCLUDED.record_count,
        held_count = activities_behaviourday.held_count + EXCLUDED.held_count,
        credited_carbon_mg = activities_behaviourday.credited_carbon_mg + EXCLUDED.credited_carbon_mg
    """
)

MERGED_BEHAVIOUR_MONTHS_ADD = sql.SQL(
    """
    INSERT INTO activities_behaviourmonth (user_id, behaviour_id, month, credited_carbon_mg)
    SELECT %s, behaviour_id, month, credited_carbon_mg
    FROM activities_behaviourmonth WHERE user_id = %s ORDER BY behaviour_id, month
    ON CONFLICT (user_id, behaviour_id, month) DO UPDATE
    SET credited_carbon_mg =
        activities_behaviourmonth.credited_carbon_mg + EXCLUDED.credited_carbon_mg
    """
)

MERGED_DAILY_CARBON_ADD = sql.SQL(
    """
    INSERT INTO activities_dailycarbon
        (user_id, day, credited_carbon_mg, settled_carbon_mg, updated_at)
    SELECT %s, day, credited_carbon_mg, settled_carbon_mg, %s
    FROM activities_dailycarbon WHERE user_id = %s ORDER BY day
    ON CONFLICT (user_id, day) DO UPDATE
    SET credited_carbon_mg = activities_dailycarbon.credited_carbon_mg + EXCLUDED.credited_carbon_mg,
        settled_carbon_mg = activities_dailycarbon.settled_carbon_mg + EXCLUDED.settled_carbon_mg,
        updated_at = EXCLUDED.updated_at
    """
)

# After a merge the caps hold per person: each (behaviour, day) and (behaviour, month) of the merged
# person is filled again in the order things happened, as capture fills it (`ingest.apply_caps`),
# from what each record credits now (a merge never raises a record). What no longer fits is taken
# off the record (its `capped_by` says which cap, `capped_at_merge_mg` how much), the counters and
# the day's credited carbon. A day's settled carbon is lowered to what stays credited: the coins
# minted for the rest are kept, and the correction says how much carbon they stood for.
MERGED_CAPS_APPLY = sql.SQL(
    """
    WITH ordered AS (
        SELECT r.id, r.behaviour_id, r.local_day, r.occurred_at, r.credited_carbon_mg AS credited,
               f.daily_cap_mg, f.monthly_cap_mg, date_trunc('month', r.local_day)::date AS month
        FROM activities_activityrecord r
        JOIN activities_factor f ON f.id = r.factor_id
        WHERE r.user_id = %(target)s AND r.status = %(credited)s AND r.credited_carbon_mg > 0
          AND (f.daily_cap_mg IS NOT NULL OR f.monthly_cap_mg IS NOT NULL)
    ),
    day_capped AS (
        SELECT *,
               CASE WHEN daily_cap_mg IS NULL THEN credited
                    ELSE greatest(0, least(credited, daily_cap_mg - coalesce(sum(credited) OVER (
                        PARTITION BY behaviour_id, local_day ORDER BY occurred_at, id
                        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)))
               END AS after_day
        FROM ordered
    ),
    month_capped AS (
        SELECT *,
               CASE WHEN monthly_cap_mg IS NULL THEN after_day
                    ELSE greatest(0, least(after_day, monthly_cap_mg - coalesce(sum(after_day) OVER (
                        PARTITION BY behaviour_id, month ORDER BY occurred_at, id
                        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)))
               END AS after_month
        FROM day_capped
    ),
    capped AS MATERIALIZED (
        SELECT id, behaviour_id, local_day, month, credited - after_month AS capped_mg,
               CASE WHEN after_month < after_day THEN %(cap_month)s ELSE %(cap_day)s END AS capped_by
        FROM month_capped WHERE after_month < credited
        UNION ALL
        -- The source's reports of instances the target was credited for (`MERGED_INSTANCES_JOIN`):
        -- their whole credit comes off.
        SELECT id, behaviour_id, local_day, date_trunc('month', local_day)::date, credited_carbon_mg, ''
        FROM activities_activityrecord
        WHERE user_id = %(target)s AND status = 'duplicate' AND credited_carbon_mg > 0
    ),
    records AS (
        UPDATE activities_activityrecord r
        SET credited_carbon_mg = r.credited_carbon_mg - c.capped_mg, capped_by = c.capped_by,
            capped_at_merge_mg = r.capped_at_merge_mg + c.capped_mg
        FROM capped c WHERE r.id = c.id
    ),
    behaviour_days AS (
        UPDATE activities_behaviourday b SET credited_carbon_mg = b.credited_carbon_mg - c.capped_mg
        FROM (SELECT behaviour_id, local_day, sum(capped_mg) AS capped_mg FROM capped GROUP BY 1, 2) c
        WHERE b.user_id = %(target)s AND b.behaviour_id = c.behaviour_id AND b.day = c.local_day
    ),
    behaviour_months AS (
        UPDATE activities_behaviourmonth m SET credited_carbon_mg = m.credited_carbon_mg - c.capped_mg
        FROM (SELECT behaviour_id, month, sum(capped_mg) AS capped_mg FROM capped GROUP BY 1, 2) c
        WHERE m.user_id = %(target)s AND m.behaviour_id = c.behaviour_id AND m.month = c.month
    ),
    per_day AS MATERIALIZED (
        SELECT d.id, d.day, c.capped_mg,
               greatest(0, d.settled_carbon_mg - (d.credited_carbon_mg - c.capped_mg)) AS kept_mg
        FROM (SELECT local_day, sum(capped_mg) AS capped_mg FROM capped GROUP BY 1) c
        JOIN activities_dailycarbon d ON d.user_id = %(target)s AND d.day = c.local_day
    ),
    daily AS (
        UPDATE activities_dailycarbon d
        SET credited_carbon_mg = d.credited_carbon_mg - p.capped_mg,
            settled_carbon_mg = d.settled_carbon_mg - p.kept_mg, updated_at = %(now)s
        FROM per_day p WHERE d.id = p.id
    ),
    corrections AS (
        INSERT INTO activities_mergecapcorrection
            (target_user_id, source_user_id, day, capped_carbon_mg, settled_kept_carbon_mg, created_at)
        SELECT %(target)s, %(source)s, day, capped_mg, kept_mg, %(now)s FROM per_day ORDER BY day
    )
    SELECT coalesce(sum(capped_mg), 0), coalesce(sum(kept_mg), 0), count(*) FROM per_day
    """
)

# Before a merge moves the source's records: a credited report of the source of an instance the
# target holds a credited report of (same behaviour, key and time bucket) becomes a second report
# of the target's, keeping its credit until `MERGED_CAPS_APPLY` takes it off; its own second
# reports point at the target's record. A rejected report holds no instance, on either side (as in
# `one_credited_report_per_instance` and `INSTANCE_CREDITED_REPORT`): it is moved as it is, and a
# report of its instance on the other side stays credited.
MERGED_INSTANCES_JOIN = sql.SQL(
    """
    WITH joined AS (
        UPDATE activities_activityrecord s SET duplicate_of_id = t.id, status = 'duplicate'
        FROM activities_activityrecord t
        WHERE s.user_id = %(source)s AND s.instance_key IS NOT NULL AND s.duplicate_of_id IS NULL
          AND s.status <> 'rejected'
          AND t.user_id = %(target)s AND t.behaviour_id = s.behaviour_id AND t.instance_key = s.instance_key
          AND t.instance_bucket = s.instance_bucket AND t.duplicate_of_id IS NULL AND t.status <> 'rejected'
        RETURNING s.id, t.id AS credited_id
    )
    UPDATE activities_activityrecord r SET duplicate_of_id = j.credited_id
    FROM joined j WHERE r.duplicate_of_id = j.id
    """
)
