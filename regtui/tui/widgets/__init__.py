"""One widget module per panel, plus the shared panel base, findings list and status strip."""
