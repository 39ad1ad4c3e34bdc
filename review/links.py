"""Links taken from imported files: only plain web addresses are ever stored or rendered."""

import re
from urllib.parse import urlsplit

WEB_SCHEMES = ("http", "https")
_EDGES = "".join(chr(c) for c in range(0x21))  # C0 controls and the space
_DROPPED = str.maketrans("", "", "\t\n\r")
_CONTROLS = re.compile("[\x00-\x1f\x7f]")
# A plain http(s) address with a host name and printable ASCII after it (PubMed's and doi.org's
# links, most others): what the full check below accepts as it is, known without urlsplit.
_PLAIN_WEB = re.compile(r"https?://[A-Za-z0-9.-]+(?::\d+)?(?:[/?#][\x21-\x7e]*)?", re.I)


def web_url(value) -> str:
    """``value`` when it is an http(s) address, else "" (``javascript:``, ``data:``, relative paths...).

    Browsers ignore leading and trailing whitespace and control characters and any tab or newline
    inside a URL ("java\\tscript:" runs as script), so the check reads the address as a browser would;
    the address returned is the cleaned one.
    """
    if not value:
        return ""
    text = str(value).strip(_EDGES).translate(_DROPPED)
    if _PLAIN_WEB.fullmatch(text):
        return text
    if _CONTROLS.search(text):
        return ""
    try:
        parts = urlsplit(text)
    except ValueError:
        return ""
    if parts.scheme.lower() not in WEB_SCHEMES or not parts.netloc:
        return ""
    return text
