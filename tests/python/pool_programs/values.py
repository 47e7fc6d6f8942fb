# What crosses the process boundary: tuples, dicts, None, nested lists, unicode, big ints, floats.
from multiprocessing import Pool

def describe(value):
    return {"kind": type(value).__name__, "value": value}

def pair(a, b):
    return (b, a)

if __name__ == "__main__":
    values = [None, True, 3, 2.5, 10**20, "naïve ☃", [1, [2, 3]], {"b": 1, "a": [None]}, (1, 2)]
    with Pool(2) as pool:
        for out in pool.map(describe, values):
            print(out)
        print(pool.starmap(pair, [(1, "x"), ("y", 2)]))
        print(pool.apply(sorted, ([3, 1, 2],)))
        print(pool.apply(str.upper, ("shout",)))
