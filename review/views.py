from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from review.models import Review


@login_required
def review_list(request):
    reviews = Review.objects.for_user(request.user)
    return render(request, "review/review_list.html", {"reviews": reviews})
