"""``python -m sto_registrations [api|worker|relay|all|migrate]``."""

from sto_registrations.bootstrap import DEFINITION
from stolive_shared.runtime import main

main(DEFINITION)
