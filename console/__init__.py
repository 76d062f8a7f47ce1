"""Application core: site, store, sweep service, CLI (QtCore at most, never widgets)."""
