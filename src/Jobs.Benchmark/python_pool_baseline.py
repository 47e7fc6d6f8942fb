"""Baseline for the Python CPU-bound map: the same module function on multiprocessing.Pool(PROCESSES), standard library.

    python3 python_pool_baseline.py ITEMS LIMIT PROCESSES MODULE_DIR   -> prints the wall time in seconds
"""
import sys
import time
from multiprocessing import Pool

sys.path.insert(0, sys.argv[4])
import pool_examples  # noqa: E402

if __name__ == "__main__":
    items, limit, processes = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    start = time.perf_counter()
    with Pool(processes) as pool:
        pool.map(pool_examples.count_primes, [limit] * items)
    print(f"{time.perf_counter() - start:.3f}")
