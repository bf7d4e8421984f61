"""Connectors whose distribution we know, to say what to install when one is missing.

Only the connectors shipped from this repository are listed: suggesting a package name we
do not know exists would invite typosquatting.
"""

from __future__ import annotations

KNOWN_DISTRIBUTIONS: dict[str, str] = {
    "tracking-api": "headwater-tracking-api",
    "webhook": "headwater-webhook",
    "file": "headwater-file",
    "mixpanel": "headwater-mixpanel",
    "amplitude": "headwater-amplitude",
    "customerio": "headwater-customerio",
    "postgres-source": "headwater-postgres",
    "postgres-warehouse": "headwater-postgres",
}
