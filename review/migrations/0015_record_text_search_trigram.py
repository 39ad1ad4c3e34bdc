from django.db import migrations

# The records table's text search (``title__icontains`` or ``abstract__icontains``, which Django writes
# as UPPER(column) LIKE UPPER(pattern)) reads a trigram index on PostgreSQL. SQLite has no such index
# and scans: the same results, slower.
#
# Its price is paid at import: PostgreSQL extracts the trigrams of every title and abstract written
# (about 1 ms a record on a busy 2-core box; bench/README.md "Records table"). Without this
# migration the text search still works, by reading the abstracts.
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
        ("review", "0014_record_table_indexes"),
    ]

    operations = [
        migrations.RunPython(add_trigram_indexes, drop_trigram_indexes),
    ]
