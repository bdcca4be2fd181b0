"""The programme's own vocabulary, the same in every service and on every form.

The kinds of event, the roles people have in Sterk Techniekonderwijs and the technical vmbo
profiles they may be interested in; codes are stored and sent in messages, labels are shown
(Dutch).
"""

from __future__ import annotations

KIND_NL: dict[str, str] = {
    "webinar": "STO LIVE-uitzending",
    "regional_meeting": "Regiobijeenkomst",
    "supra_regional_meeting": "Bovenregionale bijeenkomst",
    "national_day": "Landelijke dag",
}

EVENT_STATUS_NL: dict[str, str] = {
    "draft": "concept",
    "published": "gepubliceerd",
    "live": "nu live",
    "ended": "afgelopen",
    "cancelled": "geannuleerd",
}

ROLES: dict[str, str] = {
    "programmaleider": "Programmaleider",
    "penvoerder": "Penvoerder",
    "schoolleider": "Schoolleider",
    "docent": "Docent",
    "bedrijfsleven": "Bedrijfsleven",
    "mbo": "Mbo",
    "ondersteuner": "Ondersteuner",
    "anders": "Anders",
}

PROFILES: dict[str, str] = {
    "BWI": "Bouwen, wonen en interieur",
    "PIE": "Produceren, installeren en energie",
    "M&T": "Mobiliteit en transport",
    "MaT": "Maritiem en techniek",
    "MVI": "Media, vormgeving en ICT",
}
