"""Admin pages: the till's Daraja credentials, and users with their roles."""
