"""Settings of the demo project: ``base``, ``dev`` (embedded), ``test`` and ``prod``."""
