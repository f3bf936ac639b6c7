#!/usr/bin/env python3
"""rexec client for pcaps/gen/legacy.sh: calls glibc's rexec_af(3) (the BSD rexec client code;
no rexec command ships in Debian 12) and copies the remote command's output to stdout.

    rexec_client.py HOST USER PASSWORD COMMAND
"""
import ctypes
import os
import socket
import sys


def main() -> int:
    host, user, password, command = sys.argv[1:5]
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.rexec_af.restype = ctypes.c_int
    libc.rexec_af.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_char_p,
                              ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int),
                              ctypes.c_ushort]
    ahost = ctypes.c_char_p(host.encode())
    fd = libc.rexec_af(ctypes.byref(ahost), socket.htons(512), user.encode(), password.encode(),
                       command.encode(), None, socket.AF_INET)
    if fd < 0:
        print(f"rexec failed: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
        return 1
    while True:
        b = os.read(fd, 4096)
        if not b:
            break
        sys.stdout.buffer.write(b)
    os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
