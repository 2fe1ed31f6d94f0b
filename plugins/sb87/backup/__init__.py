"""Backup backends and the data path: command-script templates per backend, the SSH operator that
runs them where they belong, what the scripts report, and the daily freshness watch."""
