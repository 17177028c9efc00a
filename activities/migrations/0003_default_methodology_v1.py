"""The default methodology, version 1, from docs: shared/reference/methodology.md.

Grams per unit become integer milligrams; caps stated as a count ("10 rides per day") become a
carbon cap (count × factor), so a later version can change either and keep the other.
"""

import datetime

from django.db import migrations

# code, name, English name, unit, is_trip, mg per unit, daily cap mg, monthly cap mg, sources,
# review above quantity per day, where the figure comes from
BEHAVIOURS = [
    ("walk", "步行", "Walking", "step", False, 20, 200_000, None, ["phone_steps"], None,
     "Hankou Bank personal carbon account: 0.02 g per step, 200 g per day"),
    ("bus", "公交出行", "Bus ride", "ride", True, 80_000, 800_000, None, ["transit_card"], 20,
     "Hankou Bank average per ride; 10 rides per day"),
    ("metro", "地铁出行", "Metro ride", "ride", True, 80_000, 400_000, None, ["transit_card"], 10,
     "Hankou Bank average per ride; 5 rides per day as in Ant Forest"),
    ("bike_share", "共享单车", "Shared bicycle", "km", True, 93_300, 933_000, None, ["shared_mobility"], 60,
     "Wuhan municipal factor; 10 km per day"),
    ("utility_payment", "线上缴纳水电燃气费", "Online utility payment", "payment", False, 262_000, None,
     2_620_000, ["bank_payments"], None, "Hankou Bank; 10 per month (Ant Forest cap)"),
    ("e_invoice", "电子发票/账单", "Electronic invoice or bill", "document", False, 5_000, 25_000, None,
     ["bank_payments", "online_services"], None, "Ant Forest; 5 per day"),
    ("online_booking", "线上预约购票", "Online booking", "booking", False, 180_000, 540_000, None,
     ["online_services"], None, "Ant Forest; 3 per day"),
    ("no_tableware", "外卖不要餐具", "Take-out without disposable tableware", "order", False, 16_000, 48_000,
     None, ["online_services"], None, "Ele.me published totals; 3 per day"),
    ("old_clothes", "旧衣回收", "Old clothes donated", "kg", False, 1_280_000, None, 25_600_000, ["charity"],
     None, "Luzhou Green Bud programme; 20 kg per month"),
    ("recycling", "垃圾分类回收", "Sorted recyclables", "kg", False, 500_000, 10_000_000, None,
     ["recycling_station"], None, "Placeholder until the operator's recycling specification; 20 kg per day"),
    ("nev_km", "新能源汽车出行", "New-energy vehicle km", "km", False, 114_000, 22_800_000, None,
     ["charging_operator"], None, "Nanjing NEV programme; 200 km per day"),
]


def create_v1(apps, schema_editor):
    Behaviour = apps.get_model("activities", "Behaviour")
    MethodologyVersion = apps.get_model("activities", "MethodologyVersion")
    Factor = apps.get_model("activities", "Factor")
    version, _ = MethodologyVersion.objects.get_or_create(
        number=1,
        defaults={
            "effective_from": datetime.date(2020, 1, 1),
            "notes": "Default methodology v1 (shared/reference/methodology.md).",
        },
    )
    for order, row in enumerate(BEHAVIOURS):
        code, name, name_en, unit, is_trip, mg, daily, monthly, sources, review, note = row
        behaviour, _ = Behaviour.objects.get_or_create(
            code=code,
            defaults={"name": name, "name_en": name_en, "unit": unit, "is_trip": is_trip, "sort_order": order},
        )
        Factor.objects.get_or_create(
            version=version,
            behaviour=behaviour,
            defaults={
                "carbon_mg_per_unit": mg,
                "daily_cap_mg": daily,
                "monthly_cap_mg": monthly,
                "sources": sources,
                "review_above_daily_quantity": review,
                "source_note": note,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("activities", "0002_methodology_records_counters")]

    operations = [migrations.RunPython(create_v1, migrations.RunPython.noop)]
