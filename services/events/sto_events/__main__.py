"""``python -m sto_events [api|worker|relay|all|migrate]``."""

from sto_events.bootstrap import DEFINITION
from stolive_shared.runtime import main

main(DEFINITION)
