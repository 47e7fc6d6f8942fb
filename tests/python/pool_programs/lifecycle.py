# close/join, terminate, and Ctrl+C (KeyboardInterrupt) inside the with-block.
import time
from multiprocessing import Pool

def nap(seconds):
    time.sleep(seconds)
    return seconds

if __name__ == "__main__":
    pool = Pool(2)
    results = [pool.apply_async(nap, (0.1 * i,)) for i in range(4)]
    pool.close()
    pool.join()
    print([r.get() for r in results], all(r.ready() for r in results))
    try:
        pool.apply_async(nap, (1,))
    except ValueError as e:
        print("after close:", e)

    pool = Pool(2)
    long = pool.apply_async(nap, (30,))
    started = time.monotonic()
    pool.terminate()
    pool.join()
    print("terminated within a few seconds:", time.monotonic() - started < 5)

    started = time.monotonic()
    try:
        with Pool(2) as pool:
            pool.apply_async(nap, (30,))
            raise KeyboardInterrupt  # as if Ctrl+C were pressed while it ran
    except KeyboardInterrupt:
        print("interrupted; the pool was stopped:", time.monotonic() - started < 5)
