"""Shared plumbing: configuration, database and unit of work, errors, auth, i18n, web app, CLI."""
