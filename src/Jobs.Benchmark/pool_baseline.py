"""Python's multiprocessing.Pool running the same CPU-bound work as Jobs' cpu.spin, for the benchmark.

Usage: python3 pool_baseline.py ITEMS MILLISECONDS PROCESSES  -> prints the wall time of pool.map in seconds.
Standard library only.
"""
import multiprocessing
import sys
import time


def spin(milliseconds):
    # This thread's CPU time, as Jobs' cpu.spin counts it.
    end = time.thread_time() + milliseconds / 1000.0
    while time.thread_time() < end:
        pass
    return milliseconds


if __name__ == "__main__":
    items, milliseconds, processes = (int(a) for a in sys.argv[1:4])
    with multiprocessing.Pool(processes) as pool:
        pool.map(spin, [1] * processes)  # start the workers before the clock, as Jobs' workers are already running
        start = time.perf_counter()
        pool.map(spin, [milliseconds] * items)
        print(f"{time.perf_counter() - start:.3f}")
