import zipfile

from django import forms


class ReviewFileForm(forms.Form):
    file = forms.FileField(label="Review file", help_text="A .zip written by “Export review” (or export_review).")
    slug = forms.SlugField(
        max_length=80, required=False, help_text="The new review's address; empty: the one in the file."
    )

    def __init__(self, *args, refusal="", **kwargs):
        # ``refusal``: why the upload was stopped while it streamed in (review.uploads), if it was.
        super().__init__(*args, **kwargs)
        self.refusal = refusal

    def clean_file(self):
        # Told at once, before the worker is asked: a review file is a zip archive.
        upload = self.cleaned_data["file"]
        if not zipfile.is_zipfile(upload):
            raise forms.ValidationError("This is not a Sieve review file (not a zip archive).")
        upload.seek(0)
        return upload

    def clean(self):
        if self.refusal:
            raise forms.ValidationError(self.refusal)
        return super().clean()
