# apply_async with callback and error_callback, then close() and join().
from multiprocessing import Pool

def check(n):
    if n % 5 == 0:
        raise ValueError(f"{n} is a multiple of five")
    return n * 10

results, errors = [], []

if __name__ == "__main__":
    pool = Pool(4)
    for n in range(1, 13):
        pool.apply_async(check, (n,), callback=results.append, error_callback=errors.append)
    pool.close()
    pool.join()
    print(sorted(results))
    print(sorted(f"{type(e).__name__}: {e}" for e in errors))
