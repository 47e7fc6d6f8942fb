# Pool's initializer/initargs and maxtasksperchild: per-process state set up once.
from multiprocessing import Pool

scale = None

def init(factor):
    global scale
    scale = factor

def scaled(x):
    return x * scale

if __name__ == "__main__":
    with Pool(2, initializer=init, initargs=(10,), maxtasksperchild=5) as pool:
        print(pool.map(scaled, range(12)))
