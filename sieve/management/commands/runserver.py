from django.contrib.staticfiles.management.commands.runserver import Command as StaticfilesRunserver
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError

from sieve.serving import refuse_public_development_key


class Command(StaticfilesRunserver):
    def handle(self, *args, **options):
        try:
            refuse_public_development_key()
        except ImproperlyConfigured as refusal:
            raise CommandError(str(refusal)) from refusal
        super().handle(*args, **options)
