from django.contrib import admin

from review.models import Event, Invitation, Membership, Record, Review, Search


class LandedOnly:
    """Leaves out the rows of a review still being imported from a review file (Review.staged_at):
    they show nowhere until it lands."""

    def get_queryset(self, request):
        return super().get_queryset(request).filter(review__staged_at__isnull=True)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    list_display = ["title", "slug", "created_at", "created_by"]
    search_fields = ["title", "slug"]
    inlines = [MembershipInline]


@admin.register(Search)
class SearchAdmin(LandedOnly, admin.ModelAdmin):
    list_display = ["review", "kind", "source", "run_at", "run_by", "added", "duplicates"]
    list_filter = ["kind", "review"]
    search_fields = ["source", "query", "filename"]


@admin.register(Record)
class RecordAdmin(LandedOnly, admin.ModelAdmin):
    list_display = ["pk", "review", "title", "year", "pmid", "source", "ta_outcome", "ft_outcome"]
    list_filter = ["review", "ta_outcome", "ft_outcome"]
    search_fields = ["title", "pmid", "doi"]
    raw_id_fields = ["search", "duplicate_of"]
    list_select_related = ["review"]


@admin.register(Event)
class EventAdmin(LandedOnly, admin.ModelAdmin):
    """The audit trail is append-only: the admin shows it and changes nothing."""

    list_display = ["created_at", "review", "kind", "actor", "record_id"]
    list_filter = ["kind", "review"]
    raw_id_fields = ["record"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    """Invitations are made, answered and revoked in the app (review.invitations); the admin shows them."""

    list_display = ["email", "review", "role", "invited_by", "created_at", "expires_at", "accepted_by", "revoked_at"]
    list_filter = ["role", "review"]
    search_fields = ["email"]
    exclude = ["token_hash"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
