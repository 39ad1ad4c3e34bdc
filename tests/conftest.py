import pytest
from django.contrib.auth import get_user_model

from review.models import Membership, Review, Role


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Real hashing costs about a second per persona; tests check access rules, not hashing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _user(name):
    return get_user_model().objects.create_user(name, f"{name}@example.org", "pw-" + name)


@pytest.fixture
def alice(db):
    """Owner of the kratom review."""
    return _user("alice")


@pytest.fixture
def bob(db):
    return _user("bob")


@pytest.fixture
def carol(db):
    return _user("carol")


@pytest.fixture
def dave(db):
    """An outsider: member of no review."""
    return _user("dave")


@pytest.fixture
def erin(review):
    """A viewer of the kratom review: reads everything, screens and resolves nothing."""
    user = _user("erin")
    Membership.objects.create(review=review, user=user, role=Role.VIEWER)
    return user


@pytest.fixture
def review(alice, bob, carol):
    r = Review.objects.create(slug="kratom-ptsd", title="Kratom for PTSD symptoms", created_by=alice,
                              include_keywords="kratom, mitragynine", exclude_keywords="rat, mice")
    Membership.objects.create(review=r, user=alice, role=Role.OWNER)
    Membership.objects.create(review=r, user=bob, role=Role.REVIEWER)
    Membership.objects.create(review=r, user=carol, role=Role.REVIEWER)
    return r


@pytest.fixture
def other_review(dave):
    r = Review.objects.create(slug="other", title="Somebody else's review", created_by=dave)
    Membership.objects.create(review=r, user=dave, role=Role.OWNER)
    return r
