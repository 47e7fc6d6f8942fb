# A CPU-bound map: count the primes below each limit.
from multiprocessing import Pool

def count_primes(limit):
    sieve = bytearray([1]) * limit
    sieve[0:2] = b"\x00\x00"
    for i in range(2, int(limit ** 0.5) + 1):
        if sieve[i]:
            sieve[i * i::i] = bytearray(len(range(i * i, limit, i)))
    return sum(sieve)

if __name__ == "__main__":
    limits = [10_000 * k for k in range(1, 17)]
    with Pool() as pool:
        for limit, count in zip(limits, pool.map(count_primes, limits)):
            print(limit, count)
