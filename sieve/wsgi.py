import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sieve.settings")
application = get_wsgi_application()

from sieve.serving import refuse_public_development_key, refuse_uncollected_static  # noqa: E402  (needs the settings)

refuse_public_development_key()
refuse_uncollected_static()
