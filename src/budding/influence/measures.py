"""Names and limits the CLI and API read without importing the engine (numpy, numba)."""

MEASURES = ("reach", "pagerank", "betweenness", "coreness", "in_degree", "out_degree")

# IMM draws ~1/ε² RR sets: at ε = 0.01 that is already 2,500 times ε = 0.5's; below it a
# run takes hours, and ε² underflows to 0 near 1e-162.
MIN_EPSILON = 0.01
