"""Framework integrations for code-first users."""
