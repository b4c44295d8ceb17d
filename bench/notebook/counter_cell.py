"""The notebook's section 3 cell "Same concept, using processes": a multiprocessing.Lock around
+1 and -1 on a manager.Value(ctypes.c_int, 10), ITERATIONS and ITERATIONS+1 times (the cell's
10000 and 10001). Prints {"operations", "seconds", "opsPerSecond", "expected", "actual"}: the
time from starting the processes to joining them.

usage: counter_cell.py ITERATIONS
"""
import ctypes
import json
import multiprocessing
import sys
import time


def task_1(lock, counter, iterations):
    for i in range(iterations):
        lock.acquire()
        try:
            counter.value += 1
        finally:
            lock.release()


def task_2(lock, counter, iterations):
    for i in range(iterations + 1):
        lock.acquire()
        try:
            counter.value -= 1
        finally:
            lock.release()


if __name__ == "__main__":
    iterations = int(sys.argv[1])
    lock = multiprocessing.Lock()
    manager = multiprocessing.Manager()
    counter = manager.Value(ctypes.c_int, 10)
    process_1 = multiprocessing.Process(target=task_1, args=(lock, counter, iterations))
    process_2 = multiprocessing.Process(target=task_2, args=(lock, counter, iterations))
    started = time.monotonic()
    process_1.start()
    process_2.start()
    process_1.join()
    process_2.join()
    seconds = time.monotonic() - started
    operations = 2 * iterations + 1
    print(json.dumps({"operations": operations, "seconds": seconds, "opsPerSecond": operations / seconds,
                      "expected": 9, "actual": counter.value}))
    manager.shutdown()
