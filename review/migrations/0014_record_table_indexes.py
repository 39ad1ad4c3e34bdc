import django.db.models.functions.text
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("review", "0013_job"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="record",
            name="record_review_year",
        ),
        migrations.AddIndex(
            model_name="record",
            index=models.Index(fields=["review", "year", "id"], name="record_review_year_id"),
        ),
        migrations.AddIndex(
            model_name="record",
            index=models.Index(
                models.F("review"),
                django.db.models.functions.text.Left("title", 200),
                models.F("id"),
                name="record_review_title_sort",
            ),
        ),
        migrations.AddIndex(
            model_name="record",
            index=models.Index(
                condition=models.Q(("staged", False)),
                fields=["review", "id"],
                include=("ta_outcome", "ft_outcome", "duplicate_of"),
                name="record_review_listed",
            ),
        ),
    ]
