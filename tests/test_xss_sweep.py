"""Stored and reflected XSS: script in every text a user can type or import, and every page looked at.

Each builder below stores hostile text in one place a user (or an imported file) can fill; the sweep
then walks every URL pattern of the project (the URL resolver, so pages added later are covered
too) as owner, reviewer, resolver and viewer, plain and as htmx fragments, and fails on any HTML or
SVG answer that carries the markup unescaped, an event-handler attribute, an inline script or style,
or a link whose scheme is not http(s). A URL parameter the sweep cannot fill fails the test: add it
to ``url_values``.
"""

import io
import itertools
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from review import annotations, importing
from review.links import web_url
from review.models import Membership, Record, Role, Search, Stage
from screening.decisions import record_decision, resolve
from screening.extraction import save_values
from screening.models import ExtractionField

TA, FT = Stage.TITLE_ABSTRACT, Stage.FULL_TEXT
HOSTILE_SCHEMES = ("javascript:alert(1)", "JAVASCRIPT:alert(1)", " \x01javascript:alert(1)", "data:text/html,x")
TOPICS = (
    "kratom withdrawal in veterans",
    "mitragynine pharmacology review",
    "sleep quality after trauma exposure",
    "opioid substitution outcomes cohort",
)
UNESCAPED = re.compile(r"<img src=x onerror=|<script>alert\(", re.IGNORECASE)
LINK_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "poster", "data"}
SKIPPED_NAMESPACES = {"admin"}  # Django's own admin: staff only, its own templates and tests


def evil(label):
    """Hostile text naming where it was put, so a failure says which field leaked."""
    return f'<img src=x onerror=alert("{label}")><script>alert("{label}")</script>'


# Builders: each stores hostile text in one kind of place. Add one for every new kind of user text.


def review_texts(world):
    review = world.review
    for name in ("title", "question", "inclusion_criteria", "exclusion_criteria", "pubmed_query"):
        setattr(review, name, evil(name))
    review.exclusion_reasons = f"Wrong population\n{evil('exclusion reason')}"
    review.include_keywords = f"kratom, {evil('include keyword')}"
    review.exclude_keywords = f"rat, {evil('exclude keyword')}"
    review.title_abstract_reviewers = 2
    review.full_text_reviewers = 2
    review.save()


def member_names(world):
    # The resolver is a reviewer whose username and email are hostile: every page naming members shows them.
    world.resolver = get_user_model().objects.create_user(
        '<img src=x onerror=alert("username")>', email='"<script>alert(`email`)</script>"@example.org', password="pw"
    )
    Membership.objects.create(review=world.review, user=world.resolver, role=Role.REVIEWER, can_resolve=True)


def imported_records(world):
    ris = "".join(
        "TY  - JOUR\n"
        f"TI  - {evil('imported title')} {topic}\n"
        f"AB  - {evil('imported abstract')} about kratom and rats\n"
        f"AU  - {evil('imported author')}\n"
        f"AU  - {('Smith', 'Okafor', 'Lindqvist', 'Tanaka')[n]}, Jane\n"
        f"JO  - {evil('imported journal')}\n"
        f"KW  - {evil('imported keyword')}\n"
        f"UR  - {url}\n"
        f"PY  - {2000 + 5 * n}\n"
        "ER  - \n\n"
        for n, (url, topic) in enumerate(zip(HOSTILE_SCHEMES, TOPICS))
    )
    for _ in range(2):  # the second import makes duplicates, for the Duplicates page
        importing.import_file(
            review=world.review,
            fileobj=io.BytesIO(ris.encode()),
            filename='<img src=x onerror=alert("file name")>.ris',  # a file name has no "/"
            source=evil("source name"),
            user=world.alice,
        )
    world.records = list(Record.objects.filter(review=world.review, duplicate_of__isnull=True).order_by("pk"))
    # Links stored before imports refused them (or by any other way in) must not render either.
    for record, url in zip(world.records, HOSTILE_SCHEMES):
        record.url = url
        record.save(update_fields=["url"])
    world.duplicate = Record.objects.filter(review=world.review, duplicate_of__isnull=False).first()


def search_log(world):
    Search.objects.create(
        review=world.review,
        kind=Search.Kind.PUBMED,
        source="PubMed",
        query=evil("search query"),
        query_translation=evil("query translation"),
        platform=evil("platform")[:100],
        limits=evil("limits"),
        run_by=world.alice,
        hits=1,
    )
    Search.objects.create(
        review=world.review,
        kind=Search.Kind.COUNT,
        source=evil("counted source"),
        source_type=Search.SourceType.OTHER,
        query=evil("how it was searched"),
        run_by=world.alice,
        hits=3,
    )


def decisions(world):
    conflict, resolved, included, *_ = world.records
    bob, resolver, alice = world.bob, world.resolver, world.alice
    record_decision(record=conflict, reviewer=bob, stage=TA, decision="include", note=evil("note"))
    record_decision(
        record=conflict, reviewer=resolver, stage=TA, decision="exclude", reason=evil("typed reason"), note=evil("n")
    )
    record_decision(record=resolved, reviewer=bob, stage=TA, decision="include")
    record_decision(record=resolved, reviewer=resolver, stage=TA, decision="exclude", reason=evil("reason"))
    resolve(record=resolved, stage=TA, decision="exclude", user=alice, reason=evil("resolution"), note=evil("rn"))
    for stage in (TA, FT):
        for reviewer in (bob, resolver):
            record_decision(record=included, reviewer=reviewer, stage=stage, decision="include", note=evil("agreed"))
    world.conflict, world.resolved, world.included = conflict, resolved, included


def tags_and_notes(world):
    for record in world.records:
        annotations.add_tag(record, '<img src=x onerror=alert("tag")>', user=world.bob)
        annotations.add_tag(record, '<script>alert("tag")</script>', user=world.bob)
        annotations.add_note(record, evil("record note"), user=world.bob)
    world.tags = list(world.review.tags.all())


def extraction(world):
    text = ExtractionField.objects.create(
        review=world.review, name=evil("field name")[:120], kind="text", help_text=evil("help text"), position=1
    )
    choice = ExtractionField.objects.create(
        review=world.review,
        name='<img src=x onerror=alert("choice field")>',
        kind="choice",
        choices=f"{evil('choice')}\nother",
        help_text=evil("choice help"),
        position=2,
    )
    save_values(world.included, {text: evil("extracted value"), choice: evil("choice")}, world.alice)


BUILDERS = [review_texts, member_names, imported_records, search_log, decisions, tags_and_notes, extraction]


@pytest.fixture
def world(review, alice, bob, erin):
    world = SimpleNamespace(review=review, alice=alice, bob=bob, erin=erin)
    for build in BUILDERS:
        build(world)
    return world


# The URL walk ------------------------------------------------------------------------------------


def url_values(world):
    """Values for every URL parameter name in the project; a name missing here fails the sweep."""
    records = [world.conflict, world.resolved, world.included, world.duplicate]
    user = world.resolver
    return {
        "slug": [world.review.slug],
        "pk": [r.pk for r in records] + list(world.review.memberships.values_list("pk", flat=True)),
        "stage": [TA, FT],
        "fmt": ["csv", "xlsx", "json", "svg", "png", "pdf"],
        "tag_pk": [t.pk for t in world.tags],
        "uidb64": [urlsafe_base64_encode(force_bytes(user.pk))],
        "token": [default_token_generator.make_token(user), "set-password"],
    }


def patterns(resolver=None, namespace=""):
    """(name, parameter names) of every named URL pattern outside SKIPPED_NAMESPACES."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}:{entry.namespace}".strip(":") if entry.namespace else namespace
            if entry.namespace in SKIPPED_NAMESPACES:
                continue
            yield from (
                (name, list(getattr(entry.pattern, "converters", {})) + params)
                for name, params in patterns(entry, inner)
            )
        elif isinstance(entry, URLPattern) and entry.name:
            regex_groups = list(entry.pattern.regex.groupindex)
            params = list(getattr(entry.pattern, "converters", {})) or regex_groups
            yield f"{namespace}:{entry.name}".strip(":"), params


def sweep_urls(world):
    values = url_values(world)
    urls = []
    for name, params in patterns():
        unknown = [p for p in params if p not in values]
        assert not unknown, f"The XSS sweep cannot fill {unknown} of URL {name!r}: add values to url_values()."
        for combo in itertools.product(*(values[p] for p in params)):
            urls.append((name, reverse(name, kwargs=dict(zip(params, combo)))))
    # Reflected text: query strings the pages read.
    for name in ("screening:records", "review:detail", "screening:extraction", "review:duplicates"):
        urls.append((name + "?", reverse(name, args=[world.review.slug]) + "?" + hostile_query()))
    for stage in (TA, FT):
        urls.append(("screen?record", reverse("screening:screen", args=[world.review.slug, stage]) + "?record=x<b>"))
        for record in (world.conflict, world.included):
            url = reverse("screening:screen", args=[world.review.slug, stage])
            urls.append(("screen?record", f"{url}?record={record.pk}"))
    urls.append(("login?next", reverse("login") + "?next=javascript:alert(1)"))
    return urls


def hostile_query():
    from urllib.parse import urlencode

    keys = ("q", "tag", "page", "sort", "decision", "reviewer", "decision_stage", "ta", "ft", "next", "year_min")
    return urlencode({key: evil(f"query {key}") for key in keys})


# What counts as a leak ------------------------------------------------------------------------


class _Markup(HTMLParser):
    """Collects what must never be in a page: handlers, inline script/style, non-web links."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=...>: event handler attribute")
            if name == "style":
                self.problems.append(f"<{tag} style=...>: inline style (blocked by the CSP)")
            if name in LINK_ATTRIBUTES and value and ":" in value.split("/")[0] and not web_url(value):
                self.problems.append(f"<{tag} {name}={value!r}>: link that is not http(s)")
        if tag == "script":
            if not dict(attrs).get("src"):
                self.problems.append("<script> without src: inline script (blocked by the CSP)")
            self._in_script = True
        if tag == "style":
            self.problems.append("<style> element: inline style (blocked by the CSP)")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.problems.append(f"inline script text {data[:40]!r}")


def problems(response):
    """What is wrong with one answer, if it is something a browser renders (HTML or SVG)."""
    kind = response.get("Content-Type", "").split(";")[0].strip()
    if kind not in ("text/html", "image/svg+xml", "application/xhtml+xml"):
        return []
    content = b"".join(response.streaming_content) if response.streaming else response.content
    text = content.decode("utf-8", errors="replace")
    found = [f"unescaped markup: ...{text[max(0, m.start() - 60) : m.end() + 20]!r}" for m in UNESCAPED.finditer(text)]
    parser = _Markup()
    parser.feed(text)
    return found + parser.problems


@dataclass
class Sweep:
    client: object
    leaks: list = field(default_factory=list)
    seen: dict = field(default_factory=dict)

    def check(self, who, method, name, url, response):
        self.seen.setdefault(name, set()).add(response.status_code)
        self.leaks += [f"{who} {method} {url}: {p}" for p in problems(response)]
        if response.get("Content-Type", "").startswith("text/html") and response.status_code == 200:
            policy = response.get("Content-Security-Policy", "")
            if "script-src 'self'" not in policy or "unsafe-inline" in policy:
                self.leaks.append(f"{who} {method} {url}: Content-Security-Policy is {policy!r}")

    def get(self, who, name, url):
        self.check(who, "GET", name, url, self.client.get(url))
        self.check(who, "GET(htmx)", name, url, self.client.get(url, HTTP_HX_REQUEST="true"))

    def post(self, who, name, url, data):
        self.check(who, "POST(htmx)", name, url, self.client.post(url, data, HTTP_HX_REQUEST="true"))


def hostile_form():
    keys = [
        "decision",
        "reason",
        "other_reason",
        "note",
        "name",
        "text",
        "identifier",
        "role",
        "into",
        "query",
        "title",
        "question",
        "inclusion_criteria",
        "exclusion_criteria",
        "exclusion_reasons",
        "include_keywords",
        "exclude_keywords",
        "pubmed_query",
        "kind",
        "choices",
        "help_text",
        "source",
        "mindate",
        "maxdate",
        "max",
        "next",
        "username",
        "email",
    ]
    data = {key: evil(f"posted {key}") for key in keys}
    data["file"] = io.BytesIO(f"TY  - JOUR\nTI  - {evil('uploaded')}\nER  - \n".encode())
    data["file"].name = '<img src=x onerror=alert("uploaded name")>.ris'
    return data


# The tests ---------------------------------------------------------------------------------------


def test_the_hostile_text_is_really_stored_where_the_pages_read_it(world):
    record = world.conflict
    assert "imported title" in record.title and "imported abstract" in record.abstract
    assert "imported author" in record.authors[0] and "imported journal" in record.journal
    assert "imported keyword" in record.keywords[0] and "source name" in record.source
    assert "file name" in record.search.filename
    assert [r.url for r in world.records] == list(HOSTILE_SCHEMES)


def test_no_page_or_fragment_runs_text_a_user_typed_or_imported(client, world):
    sweep = Sweep(client)
    urls = sweep_urls(world)
    people = {"owner": world.alice, "reviewer": world.bob, "resolver": world.resolver, "viewer": world.erin}
    for who, user in people.items():
        client.force_login(user)
        for name, url in urls:
            sweep.get(who, name, url)
    # Writes answer with forms and fragments that echo what was posted; then every page again,
    # showing the messages and the changes those writes left behind.
    client.force_login(world.alice)
    for name, url in urls:
        sweep.post("owner", name, url, hostile_form())
    for name, url in urls:
        sweep.get("owner after writes", name, url)
    client.logout()
    for name, url in urls:
        sweep.get("logged out", name, url)
    assert sweep.leaks == [], "\n".join(sweep.leaks[:40])

    # The sweep reached every pattern, and the pages that show the hostile text answered.
    assert set(sweep.seen) >= {name for name, _ in patterns()}
    for name in (
        "review:list",
        "review:detail",
        "review:record",
        "review:searches",
        "review:duplicates",
        "review:members",
        "review:tags",
        "review:settings",
        "screening:records",
        "screening:screen",
        "screening:conflicts",
        "screening:prisma",
        "screening:prisma_download",
        "screening:extraction",
        "screening:extraction_entry",
        "screening:extraction_fields",
    ):
        assert 200 in sweep.seen[name], (name, sweep.seen[name])


def html(content):
    return SimpleNamespace(get=lambda key, default="": "text/html", streaming=False, content=content.encode())


def test_the_sweep_sees_unescaped_markup_inline_script_and_bad_links():
    assert problems(html(evil("x")))
    assert problems(html('<p style="width: 5%">x</p>')) == ["<p style=...>: inline style (blocked by the CSP)"]
    links = '<a href=" JAVASCRIPT:alert(1)">x</a><a href="https://example.org/">ok</a><a href="/r/x/">ok</a>'
    assert problems(html(links)) == ["<a href=' JAVASCRIPT:alert(1)'>: link that is not http(s)"]


def test_extraction_help_text_is_plain_text_whatever_template_prints_the_form(client, world):
    # Django's own form templates (form.as_p, as_div, {{ form }}) print help_text with |safe.
    from django.template import engines

    client.force_login(world.bob)
    response = client.get(reverse("screening:extraction_entry", args=[world.review.slug, world.included.pk]))
    assert response.status_code == 200 and problems(response) == []
    form = response.context["form"]
    for layout in ("{{ form.as_p }}", "{{ form.as_div }}", "{{ form }}"):
        rendered = engines["django"].from_string(layout).render({"form": form})
        assert problems(html(rendered)) == [], layout
        assert "&lt;script&gt;alert(&quot;help text&quot;)" in rendered
