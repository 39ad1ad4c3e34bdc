from django.db import migrations

# The records table's search matches words (screening/textsearch.py), served on PostgreSQL by one GIN
# index of the records' words in place of the two trigram indexes of 0015/0018 (substring search).
#
# The expression is screening.textsearch.Words, exactly (a test checks the plan uses this index):
# PostgreSQL's 'simple' configuration (no stemming, no stop words) over title + " " + abstract with
# the ASCII punctuation its parser reads as more than a separator made spaces, so that it sees the
# words Python sees (it would make "-19" of "COVID-19" a signed number, "3.5" one token). Replacing
# those few characters costs about 5% of to_tsvector; replacing every run of non-word characters
# (a regular expression matching between all words) cost 60% more.
#
# Partial (WHERE NOT staged) as the trigram indexes were: an import's staged COPY extracts no words,
# its landing UPDATE does, once. A word index costs about a quarter of the two trigram indexes to
# maintain (bench/README.md "Ingestion"). An index on the expression rather than a generated column:
# a stored generated column would be computed for the staged rows too and again at landing.
#
# Expression statistics, as 0018 gave the trigram indexes: the planner ignores a partial index's own
# statistics, and without them guesses how many records a word matches.
WORDS = (
    "to_tsvector('simple'::regconfig, "
    "regexp_replace(((\"title\" || ' ') || \"abstract\"), '[-+./@:<>&;_~\\\\]', ' ', 'g'))"
)
TRIGRAM = {"record_title_trgm_landed": "title", "record_abstract_trgm_landed": "abstract"}
TRIGRAM_STATISTICS = {"record_title_upper": "title", "record_abstract_upper": "abstract"}


def words(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f'CREATE STATISTICS IF NOT EXISTS "record_words" ON ({WORDS}) FROM "review_record"')
    # CONCURRENTLY: imports and votes go on while it is built; it exists before the old ones go.
    schema_editor.execute(
        f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "record_words_landed" ON "review_record" '
        f'USING gin ({WORDS}) WHERE NOT "staged"'
    )
    for name in TRIGRAM:
        schema_editor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')
    for name in TRIGRAM_STATISTICS:
        schema_editor.execute(f'DROP STATISTICS IF EXISTS "{name}"')
    schema_editor.execute('ANALYZE "review_record"')


def trigrams(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, column in TRIGRAM_STATISTICS.items():
        schema_editor.execute(f'CREATE STATISTICS IF NOT EXISTS "{name}" ON (UPPER("{column}")) FROM "review_record"')
    for name, column in TRIGRAM.items():
        schema_editor.execute(
            f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON "review_record" '
            f'USING gin (UPPER("{column}") gin_trgm_ops) WHERE NOT "staged"'
        )
    schema_editor.execute('DROP INDEX CONCURRENTLY IF EXISTS "record_words_landed"')
    schema_editor.execute('DROP STATISTICS IF EXISTS "record_words"')


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [
        ("review", "0019_fulltext"),
    ]

    operations = [
        migrations.RunPython(words, trigrams),
    ]
