import io
import itertools
import zipfile

import openpyxl
from django.urls import get_resolver, reverse

from review import invitations
from review.models import Event, Job, Membership, Record, RecordTag, Role, Tag
from screening.decisions import record_decisions, resolve
from screening.models import Decision
from screening.visibility import sees_all_votes
from tests.screening.team import FT, OPEN_NOTE, SECRET_NOTE, SECRET_REASON, TA, vote
from tests.screening.test_queue import unique_pks
from transfer import tasks as transfer_tasks

SECRETS = (SECRET_NOTE, SECRET_REASON)


def body(response):
    """A response's text: bytes decoded, spreadsheets read cell by cell."""
    content = b"".join(response.streaming_content) if response.streaming else response.content
    if content[:2] == b"PK":  # an .xlsx (or a review file) is a zip archive: its text is compressed inside
        archive = zipfile.ZipFile(io.BytesIO(content))
        if "[Content_Types].xml" not in archive.namelist():
            return "\n".join(archive.read(name).decode("utf-8", errors="replace") for name in archive.namelist())
        book = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
        return "\n".join(
            str(cell) for sheet in book for row in sheet.iter_rows(values_only=True) for cell in row if cell is not None
        )
    return content.decode("utf-8", errors="replace")


def record_page(client, review, record):
    response = client.get(reverse("review:record", args=[review.slug, record.pk]))
    assert response.status_code == 200
    return response


def membership(review, user):
    return Membership.objects.select_related("review").get(review=review, user=user)


# The rule ---------------------------------------------------------------------------------------


def test_who_sees_all_votes(review, alice, bob, carol, erin):
    assert sees_all_votes(review, membership(review, alice), TA)
    assert not sees_all_votes(review, membership(review, bob), TA)
    assert not sees_all_votes(review, membership(review, erin), TA)
    Membership.objects.filter(review=review, user=carol).update(can_resolve=True)
    assert sees_all_votes(review, membership(review, carol), FT)
    # A viewer marked as resolver (say, demoted after designation) resolves nothing and sees nothing more.
    Membership.objects.filter(review=review, user=erin).update(can_resolve=True)
    assert not sees_all_votes(review, membership(review, erin), TA)
    review.ta_blinding_lifted = True
    assert sees_all_votes(review, membership(review, bob), TA)
    assert not sees_all_votes(review, membership(review, bob), FT)


def test_bob_sees_carols_vote_only_once_the_record_is_agreed(client, review, team, alice, bob):
    client.force_login(bob)
    for record in (team.conflict, team.pending, team.ft_conflict):
        html = body(record_page(client, review, record))
        assert not any(secret in html for secret in SECRETS)
    conflict = record_page(client, review, team.conflict)
    assert {(d.reviewer.username, d.decision) for d in conflict.context["decisions"]} == {("bob", "include")}
    # "Conflict" would tell bob that carol voted the other way: it reads as pending.
    assert 'class="outcome outcome-pending">Pending<' in body(conflict)
    assert "outcome outcome-conflict" not in body(conflict)
    agreed = body(record_page(client, review, team.agreed))
    assert OPEN_NOTE in agreed

    client.force_login(alice)
    html = body(record_page(client, review, team.conflict))
    assert SECRET_NOTE in html and SECRET_REASON in html and "outcome outcome-conflict" in html
    assert SECRET_NOTE in body(record_page(client, review, team.pending))


def test_carols_history_events_are_blinded_like_her_votes(client, review, team, bob):
    client.force_login(bob)
    events = record_page(client, review, team.ft_conflict).context["events"]
    decisions = [(e.actor.username, e.detail["stage"]) for e, _ in events if e.kind == Event.Kind.DECISION]
    # Title/abstract is agreed (both included): carol's vote there shows; at full text only bob's.
    assert sorted(decisions) == [("bob", FT), ("bob", TA), ("carol", TA)]


# Records table ----------------------------------------------------------------------------------


def listed(response):
    return {row.record.pk for row in response.context["table"].paginated_rows}


def records(client, review, **params):
    response = client.get(reverse("screening:records", args=[review.slug]), {"per_page": 200, **params})
    assert response.status_code == 200
    return response


def test_bob_cannot_filter_by_carols_votes_or_find_the_conflicts(client, review, team, bob, carol):
    client.force_login(bob)
    # Asking for carol's exclusions gives bob his own.
    mine = Decision.objects.filter(reviewer=bob, stage=TA, decision="exclude", is_current=True)
    response = records(client, review, decision="exclude", reviewer=carol.pk, decision_stage=TA)
    assert listed(response) == set(mine.values_list("record_id", flat=True)) == {team.agreed.pk}
    assert list(response.context["filter"].form.fields["reviewer"].queryset) == [bob]
    # No "conflict" outcome to pick; "pending" covers records still waiting for agreement.
    response = records(client, review, ta="conflict")
    assert "ta" in response.context["filter"].form.errors
    pending = records(client, review, ta="pending", duplicates="unique")
    assert {team.conflict.pk, team.pending.pk} <= listed(pending)
    assert "outcome outcome-conflict" not in body(records(client, review))


def test_alice_filters_by_carols_votes_and_sees_the_conflicts(client, review, team, alice, carol):
    client.force_login(alice)
    response = records(client, review, decision="exclude", reviewer=carol.pk, decision_stage=TA)
    assert listed(response) == {team.conflict.pk, team.pending.pk, team.agreed.pk}
    assert listed(records(client, review, ta="conflict")) == {team.conflict.pk}
    assert listed(records(client, review, ft="conflict")) == {team.ft_conflict.pk}


# Dashboard --------------------------------------------------------------------------------------


def test_agreement_and_conflict_counts_are_for_alice_while_bob_is_blinded(client, review, team, alice, bob):
    url = reverse("review:detail", args=[review.slug])
    client.force_login(bob)
    response = client.get(url)
    ta = response.context["status"][TA]
    # Any of these would move the moment carol disagreed with one of bob's votes.
    assert (ta["pairs"], ta["kappa"], ta["percent_agreement"], ta["records_compared"]) == (None,) * 4
    assert ta["conflicts_open"] is None
    html = body(response)
    assert "Agreement per reviewer pair" not in html and "κ" not in html and "Conflicts to resolve" not in html
    client.force_login(alice)
    response = client.get(url)
    (pair,) = response.context["status"][TA]["pairs"]
    # Four records both voted on at title/abstract, one of them in conflict.
    assert pair["reviewers"] == ["bob", "carol"] and pair["records"] == 4 and pair["percent_agreement"] == 75
    assert "bob &amp; carol" in body(response)


# Lifting blinding -------------------------------------------------------------------------------


def finish_title_abstract(review, team, alice, bob, carol):
    """Both reviewers exclude every record left at title/abstract; alice resolves the conflict."""
    left = Record.objects.filter(pk__in=unique_pks(review), ta_outcome="").exclude(pk=team.pending.pk)
    for user in (bob, carol):
        record_decisions(review, TA, [Decision(record=r, reviewer=user, decision="exclude") for r in left])
    vote(team.pending, bob, "exclude")
    resolve(record=team.conflict, stage=TA, decision="include", user=alice)


def lift(client, review, stage):
    return client.post(reverse("review:blinding_lift", args=[review.slug, stage]), follow=True)


def test_alice_cannot_lift_blinding_while_work_is_left(client, review, team, alice, bob, carol):
    client.force_login(alice)
    html = body(lift(client, review, TA))
    left = Record.objects.filter(pk__in=unique_pks(review), ta_outcome="").count()
    assert f"Title/abstract screening is not done: {left} records still pending and 1 open conflict." in html
    review.refresh_from_db()
    assert not review.ta_blinding_lifted
    assert not Event.objects.filter(kind=Event.Kind.BLINDING).exists()

    finish_title_abstract(review, team, alice, bob, carol)
    # Full text still has its conflict and records nobody screened yet.
    assert "Full text screening is not done:" in body(lift(client, review, FT))
    html = body(lift(client, review, TA))
    assert "Blinding lifted at title/abstract" in html
    review.refresh_from_db()
    assert review.ta_blinding_lifted and not review.ft_blinding_lifted
    event = Event.objects.get(kind=Event.Kind.BLINDING)
    assert (event.actor, event.detail) == (alice, {"stage": TA})


def test_after_lifting_bob_sees_carols_votes_and_the_pairs(client, review, team, alice, bob, carol):
    finish_title_abstract(review, team, alice, bob, carol)
    client.force_login(alice)
    lift(client, review, TA)
    client.force_login(bob)
    excluded_by_carol = set(
        Decision.objects.filter(reviewer=carol, stage=TA, decision="exclude").values_list("record_id", flat=True)
    )
    assert (
        listed(records(client, review, decision="exclude", reviewer=carol.pk, decision_stage=TA)) == excluded_by_carol
    )
    ta = client.get(reverse("review:detail", args=[review.slug])).context["status"][TA]
    assert ta["pairs"] and ta["kappa"] is not None and ta["conflicts_open"] == 0
    # Full text is still blind: carol's full-text vote stays hidden.
    assert SECRET_NOTE not in body(record_page(client, review, team.ft_conflict))


def test_only_alice_lifts_blinding(client, review, team, bob, erin, dave):
    url = reverse("review:blinding_lift", args=[review.slug, TA])
    for user, status in ((bob, 403), (erin, 403), (dave, 404)):
        client.force_login(user)
        assert client.post(url).status_code == status
    client.force_login(bob)
    assert client.get(url).status_code == 405
    review.refresh_from_db()
    assert not review.ta_blinding_lifted


# The sweep --------------------------------------------------------------------------------------


def route_names():
    """(namespace:name, parameter names) of every URL pattern of the review and screening apps."""
    resolver = get_resolver()
    for namespace in ("review", "screening"):
        _, app = resolver.namespace_dict[namespace]
        for pattern in app.url_patterns:
            yield f"{namespace}:{pattern.name}", list(pattern.pattern.converters)


def sweep_urls(review, team):
    records = [team.conflict, team.pending, team.agreed, team.ft_conflict, team.included]
    tag = Tag.objects.create(review=review, name="check full text")
    for record in records:
        RecordTag.objects.create(record=record, tag=tag)
    invitation = invitations.invite(review, email="newcomer@lab.example", role=Role.REVIEWER, by=None).invitation
    # Finished: a queued job's page says after a minute that no worker took it, which a sweep slower
    # than that (a busy box) would see change between its two passes.
    job = Job.objects.create(review=review, kind=Job.Kind.FILE_IMPORT, title="scopus.ris", status=Job.Status.DONE)
    export = transfer_tasks.enqueue_export(review=review, user=None)
    transfer_tasks.export_review_file.call(job_id=export.pk)  # its file holds every vote
    values = {
        "slug": [review.slug],
        "pk": [r.pk for r in records]
        + list(review.memberships.values_list("pk", flat=True))
        + [invitation.pk, job.pk, export.pk],
        "stage": [TA, FT],
        "fmt": ["csv", "xlsx", "json", "svg", "png", "pdf"],
        "tag_pk": [tag.pk],
    }
    urls = []
    for name, params in route_names():
        for combo in itertools.product(*(values[p] for p in params)):
            urls.append((name, reverse(name, kwargs=dict(zip(params, combo)))))
    records_url = reverse("screening:records", args=[review.slug])
    carol = review.memberships.get(user__username="carol").user_id
    for stage in (TA, FT):
        urls.append(("records?filter", f"{records_url}?decision=exclude&reviewer={carol}&decision_stage={stage}"))
        urls.append(("records?outcome", f"{records_url}?ta=conflict&ft=conflict"))
        for record in records:
            urls.append(
                ("screen?record", reverse("screening:screen", args=[review.slug, stage]) + f"?record={record.pk}")
            )
    return urls


def test_blinding_sweep_no_page_or_download_shows_bob_carols_secrets(client, review, team, alice, bob):
    urls = sweep_urls(review, team)
    client.force_login(bob)
    seen, leaks = {}, []
    for name, url in urls:
        response = client.get(url)
        seen.setdefault(name, set()).add(response.status_code)
        for extra in ({}, {"HTTP_HX_REQUEST": "true"}):
            text = body(response if not extra else client.get(url, **extra))
            leaks += [(url, secret) for secret in SECRETS if secret in text]
    assert leaks == []
    # The sweep reached every pattern, and the pages and downloads that matter answered bob.
    assert set(seen) >= {name for name, _ in route_names()}
    for name in (
        "review:detail",
        "review:record",
        "review:audit_csv",
        "review:searches_csv",
        "screening:records",
        "screening:prisma",
        "screening:prisma_download",
        "screening:extraction",
        "screening:extraction_export",
        "screening:extraction_entry",
        "screening:screen",
    ):
        assert 200 in seen[name], (name, seen[name])
    assert seen["screening:conflicts"] == {403}

    # The same sweep as alice finds the secrets: the check above is not blind itself.
    client.force_login(alice)
    found = {name for name, url in urls for text in [body(client.get(url))] if SECRET_NOTE in text}
    assert {"review:record", "review:audit_csv", "screening:conflicts", "review:export_download"} <= found
