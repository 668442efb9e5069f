"""The benchmark floor: a bare length-prefixed echo in plain Python.

Reads a 4-byte big-endian length and that many payload bytes from stdin, writes the same frame
back to stdout, until end of input. No asyncio, no msgpack, no validation: the cheapest round
trip plain Python can do over pipes, which the worker runtime is measured against.

    python -m mlbridge_worker.floor_echo   (or: python path/to/floor_echo.py)
"""

import os
import sys


def main() -> None:
    read = sys.stdin.buffer.raw.read  # unbuffered FileIO: one read(2) per call
    write = os.write
    out = sys.stdout.fileno()
    from_bytes = int.from_bytes
    while True:
        header = read(4)
        if len(header) < 4:
            # short read: a pipe may split the header; finish it or stop at EOF
            while header and len(header) < 4:
                more = read(4 - len(header))
                if not more:
                    return
                header += more
            if not header:
                return
        n = from_bytes(header, "big")
        payload = read(n)
        while len(payload) < n:
            more = read(n - len(payload))
            if not more:
                return
            payload += more
        data = header + payload
        while data:
            data = data[write(out, data):]


if __name__ == "__main__":
    main()
