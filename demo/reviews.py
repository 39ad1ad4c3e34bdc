"""The demo's people and its two reviews, and the live PubMed search of the kratom review."""

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.urls import reverse

from review import importing, pubmed
from review.models import Membership, Review, Role, Search
from review.reviews import add_member_directly, create_review

BASE_URL = "http://127.0.0.1:8000/"  # where `make demo` serves
PASSWORD = "sieve-demo"
# username -> (role in both reviews, full name)
PEOPLE = {
    "alice": (Role.OWNER, "Alice Owner"),
    "bob": (Role.REVIEWER, "Bob Reviewer"),
    "carol": (Role.REVIEWER, "Carol Reviewer"),
    "victor": (Role.VIEWER, "Victor Viewer"),
}

KRATOM = {
    "slug": "kratom-ptsd",
    "title": "Kratom for PTSD symptoms",
    "question": (
        "In people with posttraumatic stress disorder or trauma-related symptoms, is the use of kratom "
        "(Mitragyna speciosa) or mitragynine associated with a change in PTSD symptoms?"
    ),
    "inclusion_criteria": (
        "Human studies of any design with primary data (trials, cohorts, surveys, case series and case "
        "reports) on kratom, mitragynine or 7-hydroxymitragynine use that report PTSD, posttraumatic "
        "stress or other trauma-related symptoms."
    ),
    "exclusion_criteria": (
        "Animal and in vitro studies; studies of kratom without any PTSD or trauma outcome; reviews, "
        "editorials and commentaries without primary data."
    ),
    "exclusion_reasons": (
        "Animal or in vitro study\n"
        "Not kratom or mitragynine\n"
        "No PTSD or trauma outcome\n"
        "No primary data (review, editorial)\n"
        "Wrong study design"
    ),
    "include_keywords": "kratom\nmitragynine\nMitragyna\nPTSD\nposttraumatic\ntrauma",
    "exclude_keywords": "rat\nrats\nmice\nmouse\nin vitro\nzebrafish",
    "pubmed_query": '(kratom OR mitragynine OR "Mitragyna speciosa") AND (PTSD OR "posttraumatic stress" OR trauma)',
    "title_abstract_reviewers": 2,
    "full_text_reviewers": 2,
}

TRAJECTORIES = {
    "slug": "ptsd-trajectories",
    "title": "PTSD symptom trajectories",
    "question": (
        "Which courses of PTSD symptoms (resilient, recovering, chronic, delayed onset) follow a traumatic "
        "event, and how common is each? (van de Schoot et al. 2018, SYNERGY dataset.)"
    ),
    "inclusion_criteria": (
        "Longitudinal studies with at least three measurement waves that model PTSD symptoms after a "
        "traumatic event with a latent trajectory analysis (latent growth mixture modelling, latent class "
        "growth analysis or similar)."
    ),
    "exclusion_criteria": (
        "Cross-sectional studies; outcomes other than PTSD symptoms; trajectories not estimated from the "
        "data; reviews, methods papers and commentaries."
    ),
    "exclusion_reasons": (
        "Not PTSD symptoms\n"
        "Fewer than three measurement waves\n"
        "No latent trajectory analysis\n"
        "Review, methods paper or commentary\n"
        "Same sample as an included study"
    ),
    "include_keywords": "trajectory\ntrajectories\ngrowth mixture\nlatent class\nlongitudinal\nPTSD\nposttraumatic",
    "exclude_keywords": "rats\nmice\nmeta-analysis\ncross-sectional",
    "title_abstract_reviewers": 2,
    "full_text_reviewers": 2,
}


def ensure_people():
    """The demo users; an existing account keeps its password."""
    User = get_user_model()
    users = {}
    hashed = None  # hashing is slow on purpose: once for all four accounts
    for username, (_, full_name) in PEOPLE.items():
        first, last = full_name.split(" ", 1)
        user, created = User.objects.get_or_create(
            username=username, defaults={"email": f"{username}@example.org", "first_name": first, "last_name": last}
        )
        if created:
            hashed = hashed or make_password(PASSWORD)
            user.password = hashed
            user.save(update_fields=["password"])
        users[username] = user
    return users


def ensure_review(spec, users):
    review = Review.objects.filter(slug=spec["slug"]).first()
    if review is None:
        fields = {k: v for k, v in spec.items() if k not in ("slug", "title")}
        review = create_review(slug=spec["slug"], title=spec["title"], owner=users["alice"], **fields)
    members = set(Membership.objects.filter(review=review).values_list("user__username", flat=True))
    for username, (role, _) in PEOPLE.items():
        if username not in members:
            add_member_directly(review, user=users[username], role=role, by=users["alice"])
    return review


# --- kratom-ptsd: a live PubMed search ------------------------------------------------------


def search_kratom(review, user, result, *, search=True, base_url=BASE_URL):
    page = base_url.rstrip("/") + reverse("review:search", args=[review.slug])
    if review.searches.filter(kind=Search.Kind.PUBMED).exists():
        result.messages.append(f"{review.title}: already searched PubMed; run it again from its Search page, {page}")
        return
    if not search:
        result.messages.append(
            f"{review.title}: PubMed search skipped (--no-search); run it from its Search page, {page}"
        )
        return
    try:
        outcome = importing.run_search(review=review, query=review.pubmed_query, user=user)
    except pubmed.PubMedError as exc:
        result.messages.append(
            f"{review.title}: PubMed is not reachable, so its search was not run ({exc}).\n"
            f"  The review is ready with its query: run the search later from its Search page, {page}"
        )
        return
    result.messages.append(f"{review.title}: PubMed searched: {outcome.summary()}")
