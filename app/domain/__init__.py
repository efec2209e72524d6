"""Pure domain rules: no HTTP, no database."""
