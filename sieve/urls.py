from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from review import urls as review_urls
from screening import urls as screening_urls
from transfer import urls as transfer_urls

# Django's account URLs without its emailed password reset: Sieve sends no email, and a reset form
# open to anyone would mail any address that has an account (unthrottled, and slower for an address
# that has one, so it tells who does), and keep alive the set-password links the old invite-by-account
# flow handed to inviters. A forgotten password is reset by an administrator (`manage.py
# changepassword`, or the admin site); people join through their invitation link.
accounts = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("password_change/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include(accounts)),
    path("invitations/", include("review.invitation_urls")),
    # The review's namespace holds its own pages and the review-level pages screening serves
    # (review never imports screening; this project module is the one place that joins them).
    path("", include("transfer.urls")),
    path(
        "",
        include(
            (review_urls.urlpatterns + screening_urls.review_pages + transfer_urls.review_pages, review_urls.app_name)
        ),
    ),
    path("", include("screening.urls")),
]
