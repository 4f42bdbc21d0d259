"""The web UI (``fti ui``): server-rendered pages over a feature store; see :mod:`fti.ui.app`."""
