"""The project's own records: its database (register, outbox, summaries) and the run note."""
