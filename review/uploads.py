"""The upload size limit, enforced while the request body streams in.

``SizeLimitUploadHandler`` comes first in FILE_UPLOAD_HANDLERS: it sees every chunk before
Django's memory and temporary-file handlers do, and stops the upload as soon as it is known
to be over MAX_UPLOAD_SIZE (at once, from the request's Content-Length, when the body is that
large), so an oversized body is never written to disk. The rest of the body is read and
dropped, so that the browser gets the page saying why; ``refusal(request)`` is that message.
"""

from django.core.files.uploadhandler import FileUploadHandler, StopUpload

from review import limits

# Room for the other form fields and the multipart headers around the file.
FORM_OVERHEAD = 64 * 1024
_ATTRIBUTE = "sieve_upload_refused"


class SizeLimitUploadHandler(FileUploadHandler):
    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.body_length = content_length
        self.limit = limits.max_upload_size()

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        if self.body_length and self.body_length > self.limit + FORM_OVERHEAD:
            self._stop(self.body_length)

    def receive_data_chunk(self, raw_data, start):
        if start + len(raw_data) > self.limit:
            self._stop(max(self.body_length or 0, start + len(raw_data)))
        return raw_data

    def file_complete(self, file_size):
        return None

    def _stop(self, size):
        setattr(self.request, _ATTRIBUTE, limits.too_large_message(size, self.limit, self.file_name))
        raise StopUpload(connection_reset=False)


def refusal(request):
    """The message saying the upload in ``request`` was too large, or ''."""
    return getattr(request, _ATTRIBUTE, "")
