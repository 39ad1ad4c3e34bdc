import django.db.models.functions.text
from django.db import migrations, models

# The records table's text search (``title__icontains`` or ``abstract__icontains``, which Django writes
# as UPPER(column) LIKE UPPER(pattern)) reads a trigram index on PostgreSQL. SQLite has no such index
# and scans: the same results, slower.
TRIGRAM_INDEXES = {
    "record_title_trgm": "title",
    "record_abstract_trgm": "abstract",
}


def add_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, column in TRIGRAM_INDEXES.items():
        # CONCURRENTLY: on a running server, imports and votes go on while the index is built.
        schema_editor.execute(
            f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON "review_record" USING gin (UPPER("{column}") gin_trgm_ops)'
        )


def drop_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in TRIGRAM_INDEXES:
        schema_editor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

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
        migrations.RunPython(add_trigram_indexes, drop_trigram_indexes),
    ]
