"""``python -m sto_events.regions import [FILE.csv]``: load STO regions from CSV.

The CSV has a header ``code,name,province,supra_region`` (``;`` works too, as spreadsheets in
the Netherlands export it). Existing regions are updated by code; the whole file is refused on
the first bad line. Without FILE the shipped demo file is used: the regions the programme's
newsletters name, not the programme's full list of 78 (that file is the programme's own).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from sto_events.config import EventsSettings
from sto_events.domain import EventRuleViolation, Region, parse_regions_csv
from sto_events.repository.postgres import postgres_store
from sto_events.service import EventsService
from stolive_shared.db import create_pool

DEMO_REGIONS_CSV = Path(__file__).parent / "data" / "regions-demo.csv"
# Demo school sites (BRIN numbers starting 99: no real institution), one or two per region.
DEMO_SCHOOLS_CSV = Path(__file__).parent / "data" / "schools-demo.csv"


async def _import(regions: list[Region]) -> int:
    settings = EventsSettings()
    pool = await create_pool(settings.database_url, settings.db_schema, max_size=1)
    try:
        service = EventsService(postgres_store(pool, settings.db_schema))
        return await service.import_regions(regions)
    finally:
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sto_events.regions")
    parser.add_argument("command", choices=["import"])
    parser.add_argument("file", nargs="?", type=Path, default=DEMO_REGIONS_CSV)
    args = parser.parse_args()
    try:
        count = asyncio.run(_import(parse_regions_csv(args.file.read_text("utf-8-sig"))))
    except EventRuleViolation as refused:
        sys.exit(f"niets ingelezen: {refused}")
    sys.stdout.write(f"{count} regio's ingelezen uit {args.file}\n")


if __name__ == "__main__":
    main()
