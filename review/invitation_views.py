"""The invitee's side of an invitation: the link's page, and answering from the review list."""

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from review import invitations
from review.forms import InvitationSignupForm
from review.invitations import InvitationClosed
from review.models import Invitation

# The account made through a link is logged in at once; it has just proved its password.
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _closed(request, error):
    # Unknown, used, declined, revoked and expired tokens all read the same: nothing to learn.
    return render(request, "review/invitation_closed.html", {"message": str(error)}, status=404)


def _page(request, invitation, token, signup_form=None):
    context = {
        "invitation": invitation,
        "token": token,
        "already_member": request.user.is_authenticated
        and invitation.review.memberships.filter(user=request.user).exists(),
        "signup_form": signup_form or InvitationSignupForm(email=invitation.email),
        "login_url": f"{reverse('login')}?next={reverse('invitations:show', args=[token])}",
    }
    return render(request, "review/invitation.html", context)


@require_GET
def show(request, token):
    try:
        invitation = invitations.by_token(token)
    except InvitationClosed as e:
        return _closed(request, e)
    return _page(request, invitation, token)


def _accept(request, invitation):
    membership = invitations.accept(invitation, user=request.user)
    messages.success(request, f"You joined “{membership.review.title}” as {membership.get_role_display().lower()}.")
    return redirect(membership.review)


def _decline(request, invitation):
    invitations.decline(invitation, user=request.user)
    messages.success(request, f"You declined the invitation to “{invitation.review.title}”.")
    return redirect("review:list")


def _answer(request, invitation, answer, *, back):
    if invitation is None:
        return _closed(request, InvitationClosed())
    try:
        return answer(request, invitation)
    except InvitationClosed as e:
        return _closed(request, e)
    except ValueError as e:  # already a member
        messages.error(request, str(e))
        return redirect(back)


def _by_token(token):
    try:
        return invitations.by_token(token)
    except InvitationClosed:
        return None


def _by_link(request, token, answer):
    # Logged out: log in first, then come back to the invitation's page to answer it.
    show_url = reverse("invitations:show", args=[token])
    if not request.user.is_authenticated:
        return redirect_to_login(show_url)
    return _answer(request, _by_token(token), answer, back=show_url)


@require_POST
def accept(request, token):
    return _by_link(request, token, _accept)


@require_POST
def decline(request, token):
    return _by_link(request, token, _decline)


@require_POST
def join(request, token):
    invitation = _by_token(token)
    if invitation is None:
        return _closed(request, InvitationClosed())
    if request.user.is_authenticated:
        messages.info(request, "You are logged in already: accept with this account, or log out first.")
        return redirect("invitations:show", token)
    form = InvitationSignupForm(request.POST, email=invitation.email)
    if not form.is_valid():
        return _page(request, invitation, token, signup_form=form)
    try:
        membership = invitations.accept_with_new_account(invitation, form=form)
    except InvitationClosed as e:
        return _closed(request, e)
    except ValueError as e:
        form.add_error("username", str(e))
        return _page(request, invitation, token, signup_form=form)
    login(request, membership.user, backend=MODEL_BACKEND)
    messages.success(request, f"Welcome, {membership.user.get_username()}: you joined “{membership.review.title}”.")
    return redirect(membership.review)


def _listed(request, pk):
    # Only invitations sent to the user's own address: anyone else's reads as closed (404).
    return Invitation.objects.for_invitee(request.user).select_related("review").filter(pk=pk).first()


@login_required
@require_POST
def accept_listed(request, pk):
    return _answer(request, _listed(request, pk), _accept, back="review:list")


@login_required
@require_POST
def decline_listed(request, pk):
    return _answer(request, _listed(request, pk), _decline, back="review:list")
