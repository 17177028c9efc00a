"""The default rating thresholds (top 10 % dark green, next 30 % medium) and the starting badges."""

from django.db import migrations

BADGES = [
    # key, rule, parameters, name, English name, description, English description
    ("first_walk", "first_behaviour", {"behaviour": "walk"}, "迈出第一步", "First walk",
     "第一次记录步行减排", "Your first walk counted"),
    ("first_bus_ride", "first_behaviour", {"behaviour": "bus"}, "公交初体验", "First bus ride",
     "第一次乘公交减排", "Your first bus ride counted"),
    ("first_metro_ride", "first_behaviour", {"behaviour": "metro"}, "地铁初体验", "First metro ride",
     "第一次乘地铁减排", "Your first metro ride counted"),
    ("streak_7", "streak", {"days": 7}, "连续7天", "7-day streak",
     "连续7天都有低碳行为", "Low-carbon activity 7 days in a row"),
    ("streak_30", "streak", {"days": 30}, "连续30天", "30-day streak",
     "连续30天都有低碳行为", "Low-carbon activity 30 days in a row"),
    ("reduced_10kg", "carbon_total", {"carbon_mg": 10_000_000}, "减排10公斤", "10 kg reduced",
     "累计减排10千克二氧化碳当量", "10 kg of CO2e reduced in all"),
    ("reduced_100kg", "carbon_total", {"carbon_mg": 100_000_000}, "减排100公斤", "100 kg reduced",
     "累计减排100千克二氧化碳当量", "100 kg of CO2e reduced in all"),
    ("first_donation", "first_donation", {}, "爱心捐赠", "First donation",
     "第一次向公益项目捐赠碳币", "Your first coins given to a welfare project"),
    ("ambassador", "ambassador", {}, "减碳大使", "Carbon ambassador",
     "获评一次月度深绿（减碳大使）", "Rated dark green (carbon ambassador) for a month"),
]


def create(apps, schema_editor):
    RatingThresholds = apps.get_model("rewards", "RatingThresholds")
    Badge = apps.get_model("rewards", "Badge")
    if not RatingThresholds.objects.exists():
        RatingThresholds.objects.create(note="Default: top 10 % dark green, next 30 % medium green")
    for order, (key, rule, parameters, name, name_en, description, description_en) in enumerate(BADGES):
        Badge.objects.get_or_create(
            key=key,
            defaults={
                "rule": rule,
                "parameters": parameters,
                "name": name,
                "name_en": name_en,
                "description": description,
                "description_en": description_en,
                "sort_order": order,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("rewards", "0006_gamification")]

    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
