"""Today's view of a person (`activities.selectors.today_for`): one statement, prepared on the connection."""

from __future__ import annotations

from psycopg import sql

# Today's counters of every behaviour with a factor in effect on the day, its caps, and what
# settlement owes the person and how many of their records wait for review: one statement (the
# app opens on it), prepared on the connection. The factor in effect is the one of the latest
# methodology version effective on or before the day (`Methodology.factor_for`).
TODAY = sql.SQL(
    """
    WITH factors AS (
        SELECT DISTINCT ON (factor.behaviour_id)
               factor.behaviour_id, factor.daily_cap_mg, factor.monthly_cap_mg
          FROM activities_factor AS factor
          JOIN activities_methodologyversion AS version ON version.id = factor.version_id
         WHERE version.effective_from <= %(day)s
         ORDER BY factor.behaviour_id, version.effective_from DESC
    )
    SELECT
        (SELECT COALESCE(SUM(credited_carbon_mg - settled_carbon_mg), 0) FROM activities_dailycarbon
          WHERE user_id = %(user)s AND credited_carbon_mg > settled_carbon_mg),
        (SELECT count(*) FROM activities_activityrecord WHERE user_id = %(user)s AND status = %(held)s),
        behaviour.code, behaviour.name, behaviour.name_en, behaviour.unit,
        COALESCE(day.quantity, 0), COALESCE(day.credited_carbon_mg, 0), COALESCE(day.held_count, 0),
        factors.daily_cap_mg, factors.monthly_cap_mg, COALESCE(month.credited_carbon_mg, 0)
      FROM (SELECT 1 AS one) AS one
      LEFT JOIN factors ON TRUE
      LEFT JOIN activities_behaviour AS behaviour ON behaviour.id = factors.behaviour_id
      LEFT JOIN activities_behaviourday AS day
        ON day.user_id = %(user)s AND day.behaviour_id = factors.behaviour_id AND day.day = %(day)s
      LEFT JOIN activities_behaviourmonth AS month
        ON month.user_id = %(user)s AND month.behaviour_id = factors.behaviour_id AND month.month = %(month)s
     ORDER BY behaviour.sort_order, behaviour.code
"""
)
