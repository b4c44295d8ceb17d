"""The notebook's section 4.1 cell "With processes": a multiprocessing.Queue(10) between a producer
and a consumer process, each polling full()/empty() as the cell does, with its
time.sleep(random.random()) and its print per item removed (poold without --trace logs nothing
per item either). Prints {"items", "seconds", "itemsPerSecond", "checksumOK"}: the time from
starting the processes to joining them.

With `block`, put() and get() block instead of the polls: the spinning main thread no longer
starves the queue's feeder thread of the GIL (it hands over every switch interval, 5 ms), so
this is what multiprocessing.Queue itself can move.

usage: queue_cell.py ITEMS [poll|block]
"""
import json
import multiprocessing
import random
import sys
import time


class Producer():
    def __init__(self, q, sums, iters=10, blocking=False):
        super(Producer, self).__init__()
        self.iters = iters
        self.q = q
        self.sums = sums
        self.blocking = blocking

    def run(self):
        i = 0
        total = 0
        while i < self.iters:
            if self.blocking or not self.q.full():
                item = random.randint(1, 10)
                self.q.put(item)
                total += item
                i += 1
        self.sums[0] = total
        return

    def start(self):
        process = multiprocessing.Process(target=self.run)
        process.start()
        return process


class Consumer():
    def __init__(self, q, sums, iters=10, blocking=False):
        super(Consumer, self).__init__()
        self.iters = iters
        self.q = q
        self.sums = sums
        self.blocking = blocking

    def run(self):
        i = 0
        total = 0
        while i < self.iters:
            if self.blocking or not self.q.empty():
                item = self.q.get()
                total += item
                i += 1
        self.sums[1] = total
        return

    def start(self):
        process = multiprocessing.Process(target=self.run)
        process.start()
        return process


if __name__ == "__main__":
    items = int(sys.argv[1])
    blocking = sys.argv[2:] == ["block"]
    queue_length = 10
    q = multiprocessing.Queue(queue_length)
    sums = multiprocessing.Array("q", 2)
    started = time.monotonic()
    p = Producer(q, sums, items, blocking)
    task_p = p.start()
    c = Consumer(q, sums, items, blocking)
    task_c = c.start()
    task_p.join()
    task_c.join()
    seconds = time.monotonic() - started
    print(json.dumps({"items": items, "seconds": seconds, "itemsPerSecond": items / seconds,
                      "checksumOK": sums[0] == sums[1] and task_p.exitcode == 0 and task_c.exitcode == 0}))
