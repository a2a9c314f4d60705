"""Rewards: rules, exactly-once issuance, reversal by compensating entries, vesting, coupon pools."""
