# starmap with a chunksize, map_async with a callback, and functools.partial.
from functools import partial
from multiprocessing import Pool

def power(base, exponent, modulo=None):
    return pow(base, exponent, modulo)

if __name__ == "__main__":
    pairs = [(b, e) for b in range(2, 6) for e in range(3)]
    with Pool(3) as pool:
        print(pool.starmap(power, pairs, chunksize=4))
        cubes = pool.map(partial(power, exponent=3), range(6))
        print(cubes)
        print(pool.map(partial(power, 2), range(8)))
        done = pool.map_async(partial(power, exponent=2, modulo=7), range(10), callback=lambda r: print("callback", r))
        done.wait()
        print(done.successful(), done.get())
