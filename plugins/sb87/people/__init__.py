"""People and decisions: the roster's decisions (human-in-the-loop), their forms, the auth managers
that bind them to roster users, and the production accounts."""
