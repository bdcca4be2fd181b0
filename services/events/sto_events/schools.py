"""School sites (vmbo-vestigingen) as data: the rules for reading them from CSV. Pure, no I/O.

A site is known by its BRIN number and vestigingsnummer together ("12AB00": four characters of
the institution, two digits of the site), as DUO publishes them; name and place as the site
calls itself; the STO region it belongs to, when the programme has said so. The import reads
the programme's own file (``brin;vestiging;naam;plaats;regio``) and DUO's open-data export
(``BRIN NUMMER;VESTIGINGSNUMMER;VESTIGINGSNAAM;PLAATSNAAM``) alike; the whole file is refused on
the first bad line, so an import never half-succeeds.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass

from sto_events.domain import EventRuleViolation

BRIN = re.compile(r"^[0-9]{2}[A-Z]{2}$")
SITE = re.compile(r"^[0-9]{2}$")
# The column names the import understands, per field (lower case, spaces as in the header).
COLUMNS = {
    "brin": ("brin", "brin nummer", "brinnummer", "instellingscode"),
    "site": ("vestiging", "vestigingsnummer", "vestigingscode"),
    "name": ("naam", "name", "vestigingsnaam"),
    "place": ("plaats", "place", "plaatsnaam"),
    "region": ("regio", "region", "region_code", "sto-regio"),
}


@dataclass(frozen=True)
class School:
    code: str  # BRIN + vestigingsnummer, e.g. "12AB00"
    name: str
    place: str
    region_code: str | None = None

    @property
    def label(self) -> str:
        """How a form and a figure name the site: 'Techniekcollege (Emmen)'."""
        return f"{self.name} ({self.place})" if self.place else self.name


class SchoolImportError(EventRuleViolation):
    """A schools CSV the import refuses; the message names the line."""


def _column(header: list[str], field: str) -> str | None:
    return next((name for name in header if name in COLUMNS[field]), None)


def _reader(values: dict[str, str], columns: dict[str, str | None]) -> Callable[[str], str]:
    """A row's value of a field, whichever header name the file gave it."""

    def value(field: str) -> str:
        column = columns[field]
        return values.get(column, "") if column else ""

    return value


def parse_schools_csv(text: str) -> list[School]:
    """School sites from CSV (``;`` or ``,``; a byte-order mark is ignored)."""
    text = text.lstrip("\ufeff")
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    header = [(name or "").strip().lower() for name in reader.fieldnames or ()]
    reader.fieldnames = header
    columns = {field: _column(header, field) for field in COLUMNS}
    missing = [COLUMNS[f][0] for f in ("brin", "site", "name") if columns[f] is None]
    if missing:
        raise SchoolImportError(f"kolom ontbreekt in de kopregel: {', '.join(missing)}")
    schools: dict[str, School] = {}
    for row in reader:
        line = reader.line_num
        values = {key: (value or "").strip() for key, value in row.items() if key}
        if not any(values.values()):
            continue
        value = _reader(values, columns)
        brin, site = value("brin").upper(), value("site").upper()
        if len(site) == 6 and site.startswith(brin):  # DUO writes the whole code here
            site = site[4:]
        if not BRIN.match(brin):
            raise SchoolImportError(f"regel {line}: BRIN-nummer '{brin}' is niet geldig")
        if not SITE.match(site):
            raise SchoolImportError(f"regel {line}: vestigingsnummer '{site}' is niet geldig")
        name = value("name")
        if not 2 <= len(name) <= 160:
            raise SchoolImportError(f"regel {line}: de naam van {brin}{site} ontbreekt of is lang")
        code = brin + site
        if code in schools:
            raise SchoolImportError(f"regel {line}: vestiging {code} staat er twee keer in")
        place = value("place")
        place = place.title() if place.isupper() else place  # DUO writes places in capitals
        schools[code] = School(code, name, place[:80], value("region").lower() or None)
    if not schools:
        raise SchoolImportError("het bestand bevat geen vestigingen")
    return list(schools.values())
