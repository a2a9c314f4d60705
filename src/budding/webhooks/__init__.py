"""Webhooks: per-program endpoints, signed deliveries with retries, and their log.

Other capabilities call ``budding.webhooks.service.emit(session, program, type, payload)``.
A capability that emits a new event type declares it in its package ``__init__`` as
``WEBHOOK_EVENTS = {"type.name": "What happened"}`` so endpoints can subscribe to it.
"""
