# imap over a generator with a progress line, and imap_unordered collected into a set.
from multiprocessing import Pool

def numbers(n):
    for i in range(n):
        yield i

def slow_square(x):
    return x * x

if __name__ == "__main__":
    total = 0
    with Pool(4) as pool:
        for i, value in enumerate(pool.imap(slow_square, numbers(2000), chunksize=50), 1):
            total += value
            if i % 500 == 0:
                print(f"{i}/2000 done, running total {total}")
        print(sorted(pool.imap_unordered(slow_square, range(20)))[-3:])
