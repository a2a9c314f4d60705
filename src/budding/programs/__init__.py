"""Programs: one brand's word-of-mouth program. No data ever crosses programs."""
