"""E-mail notices: Jinja-rendered Thai messages, queued in the outbox and sent at most once each."""
