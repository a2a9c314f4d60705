"""Names of the opinion-leader measures (kept apart so the CLI can list them without the engine)."""

MEASURES = ("reach", "pagerank", "betweenness", "coreness", "in_degree", "out_degree")
