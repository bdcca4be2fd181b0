"""STO Live's shared library: message contracts and the plumbing every service uses.

Import from the submodules (``stolive_shared.contracts``, ``stolive_shared.messaging``,
``stolive_shared.db`` ...); this package re-exports nothing.
"""
