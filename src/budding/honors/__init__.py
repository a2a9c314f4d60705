"""Honors: for now the append-only points ledger that rewards write to and honors builds on."""
