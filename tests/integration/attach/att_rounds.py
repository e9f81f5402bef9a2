# att_rounds — the Python program test_att_python attaches to. Round after
# round it builds big bytearrays, bytes, a list and a dict (blocks that
# come from malloc through CPython's raw allocator, not pymalloc's arenas),
# prints "round R CHECKSUM" (the same R → the same checksum, in any run),
# and frees them. It stops after LIMIT rounds if given, or once the file
# STOP exists; then prints "end". With --until, once the file STOP.mark
# exists it prints "mark" (once) before its next round, so that a test
# knows which rounds began after it made the file.
#
# usage: python3 att_rounds.py LIMIT | --until STOP
import os
import sys
import time
import zlib


def one_round(r):
    n = 300_000 + (r % 7) * 10_000
    a = bytearray(n)
    for i in range(0, n, 4096):
        a[i] = (r + i) & 0xFF
    b = bytes(a) * 2
    items = [i * r for i in range(20_000)]
    table = {i: str(i * r) for i in range(2_000)}
    check = zlib.crc32(b) ^ (sum(items) & 0xFFFFFFFF) ^ len(table)
    return check


def main():
    limit, stop = None, None
    if sys.argv[1] == "--until":
        stop = sys.argv[2]
    else:
        limit = int(sys.argv[1])
    r = 0
    marked = False
    while (limit is None or r < limit) and (stop is None or not os.path.exists(stop)):
        if stop is not None and not marked and os.path.exists(stop + ".mark"):
            print("mark", flush=True)
            marked = True
        print("round %d %d" % (r, one_round(r)), flush=True)
        r += 1
        if stop is not None:
            time.sleep(0.005)  # not flooding the test's pipe
    print("end", flush=True)


main()
