"""Reading school sites from CSV: the programme's own file and DUO's export alike, all or
nothing, with the line of the first mistake."""

from __future__ import annotations

import pytest

from sto_events.schools import School, SchoolImportError, parse_schools_csv


def test_the_programmes_file_and_duos_export_give_the_same_sites() -> None:
    ours = "brin;vestiging;naam;plaats;regio\n12AB;00;Techniekcollege;Emmen;Drenthe\n"
    duo = (
        "\ufeffBRIN NUMMER;VESTIGINGSNUMMER;VESTIGINGSNAAM;PLAATSNAAM\n"
        "12AB;12AB00;Techniekcollege;EMMEN\n"
    )
    assert parse_schools_csv(ours) == [School("12AB00", "Techniekcollege", "Emmen", "drenthe")]
    assert parse_schools_csv(duo) == [School("12AB00", "Techniekcollege", "Emmen", None)]
    assert parse_schools_csv(ours)[0].label == "Techniekcollege (Emmen)"


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("1XAB;00;Naam;Plaats;", "regel 3: BRIN-nummer '1XAB' is niet geldig"),
        ("12AB;0;Naam;Plaats;", "regel 3: vestigingsnummer '0' is niet geldig"),
        ("12AB;01;;Plaats;", "regel 3: de naam van 12AB01 ontbreekt"),
        ("12AB;00;Dubbel;Plaats;", "regel 3: vestiging 12AB00 staat er twee keer in"),
    ],
)
def test_one_bad_line_refuses_the_whole_file_and_names_the_line(line: str, problem: str) -> None:
    text = f"brin;vestiging;naam;plaats;regio\n12AB;00;Goed;Emmen;drenthe\n{line}\n"
    with pytest.raises(SchoolImportError, match=problem):
        parse_schools_csv(text)


def test_a_file_without_the_needed_columns_or_sites_is_refused() -> None:
    with pytest.raises(SchoolImportError, match="kolom ontbreekt in de kopregel: brin"):
        parse_schools_csv("naam;plaats\nEen school;Emmen\n")
    with pytest.raises(SchoolImportError, match="geen vestigingen"):
        parse_schools_csv("brin;vestiging;naam\n")
