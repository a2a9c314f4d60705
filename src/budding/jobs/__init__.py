"""Background jobs: the ``jobs`` table (status, progress, result) and the durable queue's
storage. The API lives in ``budding.core.jobs``; this package holds its tables, the
``/api/v1/jobs/{id}`` route, the admin page and ``budding worker``."""
