"""``python -m sto_notifications [api|worker|relay|all|migrate]``."""

from sto_notifications.bootstrap import DEFINITION
from stolive_shared.runtime import main

main(DEFINITION)
