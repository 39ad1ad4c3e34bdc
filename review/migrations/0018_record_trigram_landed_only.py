from django.db import migrations

# The records table's trigram indexes (0015) hold the landed records only (WHERE NOT staged).
#
# An import COPYs its records in staged, then one UPDATE lands them (review/importing.py). With
# indexes over every row, PostgreSQL extracted every title's and abstract's trigrams twice: once for
# the staged row, once for its landed version (the UPDATE writes a new row version, and flipping
# ``staged`` can never be a HOT update). Those GIN entries were most of a PostgreSQL import's time
# (bench/README.md "Ingestion"). Partial indexes take each record's trigrams once, when it lands.
# Every query that can use them reads landed records only (Record.objects adds NOT staged), so
# the records table's text search is served as before.
#
# PostgreSQL keeps statistics of an index's expressions, but its planner ignores those of a partial
# index: without them it took UPPER(title) LIKE '%SYSTEMATIC%' for 20 rows of 100,000 (62,355
# match) and read every match to show the first page (3 s) instead of walking the table in order.
# Expression statistics (CREATE STATISTICS, PostgreSQL 14+) give the estimates back.
OLD = {"record_title_trgm": "title", "record_abstract_trgm": "abstract"}
NEW = {"record_title_trgm_landed": "title", "record_abstract_trgm_landed": "abstract"}
STATISTICS = {"record_title_upper": "title", "record_abstract_upper": "abstract"}


def _create(schema_editor, indexes, where):
    for name, column in indexes.items():
        # CONCURRENTLY: on a running server, imports and votes go on while the index is built; the
        # new indexes exist before the old ones go, so the text search is never without one.
        schema_editor.execute(
            f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON "review_record" '
            f'USING gin (UPPER("{column}") gin_trgm_ops){where}'
        )


def _drop(schema_editor, indexes):
    for name in indexes:
        schema_editor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')


def landed_only(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, column in STATISTICS.items():
        schema_editor.execute(f'CREATE STATISTICS IF NOT EXISTS "{name}" ON (UPPER("{column}")) FROM "review_record"')
    _create(schema_editor, NEW, ' WHERE NOT "staged"')
    _drop(schema_editor, OLD)
    schema_editor.execute('ANALYZE "review_record"')


def every_row(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    _create(schema_editor, OLD, "")
    _drop(schema_editor, NEW)
    for name in STATISTICS:
        schema_editor.execute(f'DROP STATISTICS IF EXISTS "{name}"')


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [
        ("review", "0017_review_staged_at"),
    ]

    operations = [
        migrations.RunPython(landed_only, every_row),
    ]
