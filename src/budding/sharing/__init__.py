"""The share kit ("fission material"), the share funnel with its measured launch cost,
and the virality metrics (K-factor, cycle time, generations, projection)."""
