"""Accounts: staff users and roles, login sessions, API keys."""
