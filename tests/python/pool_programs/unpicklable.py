# The "Can't pickle local object" family: what can't be sent, and what the error says.
from multiprocessing import Pool

def top_level(x):
    return x + 1

def main():
    def nested(x):
        return x
    with Pool(2) as pool:
        print(pool.apply(top_level, (1,)))
        for name, fn in [("lambda", lambda x: x), ("nested", nested)]:
            try:
                pool.apply(fn, (1,))
            except Exception as e:
                print(name, type(e).__name__, e)
        try:
            pool.map(lambda x: x, [1, 2])
        except Exception as e:
            print("map", type(e).__name__, e)

if __name__ == "__main__":
    main()
