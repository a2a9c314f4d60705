"""Fraud: checks on referred signups (self-referral, disposable domains, velocity, rings),
the review queue, and a generator of labelled scenarios to measure the checks."""
