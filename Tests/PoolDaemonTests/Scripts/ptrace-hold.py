#!/usr/bin/env python3
"""Traces a process the way strace or gdb would, and holds on to it when it dies.

Usage: ptrace-hold.py PID

PTRACE_SEIZEs PID (without stopping it) and prints "seized" once it holds it. A traced process
that dies stays the tracer's to collect first: its parent cannot reap it until then. This script
collects it only when a line arrives on stdin (or stdin closes), then prints the wait status and
exits 0.
"""
import ctypes
import os
import sys

PTRACE_SEIZE = 0x4206
WALL = 0x40000000  # __WALL: wait for any child, traced ones included

libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
libc.ptrace.restype = ctypes.c_long

pid = int(sys.argv[1])
if libc.ptrace(PTRACE_SEIZE, pid, None, None) != 0:
    error = ctypes.get_errno()
    print(f"PTRACE_SEIZE {pid}: {os.strerror(error)}", file=sys.stderr, flush=True)
    sys.exit(1)
print("seized", flush=True)

sys.stdin.readline()
_, status = os.waitpid(pid, WALL)
print(f"collected {pid}: status {status:#x}", flush=True)
