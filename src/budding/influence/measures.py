"""Names and limits the CLI and API read without importing the engine (numpy, numba)."""

MEASURES = ("reach", "pagerank", "betweenness", "coreness", "in_degree", "out_degree")

# IMM draws ~1/ε² RR sets: at ε = 0.01 that is already 2,500 times ε = 0.5's; below it a
# run takes hours, and ε² underflows to 0 near 1e-162.
MIN_EPSILON = 0.01

# Monte-Carlo campaign runs: each keeps its reach per step (max_steps + 1 int32), so a
# million take ~0.2 GB at 50 steps (twice that while the parts are joined), and their
# 95 % interval is already ±0.002 σ.
MAX_RUNS = 1_000_000
