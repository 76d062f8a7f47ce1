"""Qt GUI: models and views fed by the core; never SQL, never SSH on the GUI thread."""
