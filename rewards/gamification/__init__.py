"""What keeps people coming back: leaderboards, monthly ratings, badges and streaks, the personal
carbon report and its shareable card, and the green credit profile partner banks read with consent.

All of it is derived from the records of truth (`activities.DailyCarbon`, the behaviour counters,
the ledger), rebuilt set-based by Celery jobs.
"""
