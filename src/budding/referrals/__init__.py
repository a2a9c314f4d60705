"""Invitations, waitlist, referral links, attribution and the fission tree."""
