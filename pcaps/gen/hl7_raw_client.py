#!/usr/bin/env python3
"""Hand-rolled MLLP client used by pcaps/gen/interop.sh: one connection per call, sends HL7 v2
framed as <0x0B> message <0x1C 0x0D> in a shape other senders use, then reads the replies.

  hl7_raw_client.py HOST PORT VARIANT

Variants (segments end with CR; the patients are fake, listed in pcaps/hl7/PHI_VALUES.txt):
  batch_first  the connection's first frame is a batch: FHS, BHS, one ADT^A08, BTS, FTS
  delims       MSH-1 '#' and MSH-2 '!@$%' (component '!', repetition '@', escape '$',
               subcomponent '%') instead of |^~\\&
  trunc        HL7 v2.7 MSH-2 with the truncation character: ^~\\&#
Exits 1 if no acknowledgement came back within 3 s.
"""
import socket
import sys
import time

SB, EB = b"\x0b", b"\x1c\x0d"


def msg(segs):
    return ("\r".join(segs) + "\r").encode("ascii")


VARIANTS = {
    "batch_first": msg([
        "FHS|^~\\&|BATCH_APP|TESTFAC|TEST_HIS|TESTHOSP|20261129084504||FILE0001",
        "BHS|^~\\&|BATCH_APP|TESTFAC|TEST_HIS|TESTHOSP|20261129084504||BATCH0001",
        "MSH|^~\\&|BATCH_APP|TESTFAC|TEST_HIS|TESTHOSP|20261129084504||ADT^A08^ADT_A01|BMSG0001|P|2.5",
        "EVN|A08|20261129084504",
        "PID|1||PID-TEST-0110^^^TESTHOSP^MR||TESTPATIENT^JULIET||19910101|F",
        "BTS|1",
        "FTS|1"]),
    "delims": msg([
        "MSH#!@$%#ODD_APP#ODD_FAC#TEST_HIS#TESTHOSP#20261129084506##ADT!A04!ADT_A01#DELIM0001#P#2.3",
        "EVN#A04#20261129084506",
        "PID#1##PID-TEST-0111!!!TESTHOSP!MR##TESTPATIENT!KILO##19920202#F"]),
    "trunc": msg([
        "MSH|^~\\&#|NEW_APP|TESTFAC|TEST_HIS|TESTHOSP|20261129084507||ADT^A01^ADT_A01|TRUNC0001|P|2.7",
        "EVN||20261129084507",
        "PID|1||PID-TEST-0112^^^TESTHOSP^MR||TESTPATIENT^LIMA||19930303|M"]),
}


def main():
    host, port, variant = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    s = socket.create_connection((host, port), timeout=3)
    s.sendall(SB + VARIANTS[variant] + EB)
    buf = b""
    deadline = time.time() + 3
    while EB not in buf and time.time() < deadline:
        try:
            d = s.recv(65536)
        except socket.timeout:
            break
        if not d:
            break
        buf += d
    s.close()
    print(variant, "reply", repr(buf[:100]), file=sys.stderr)
    return 0 if EB in buf else 1


if __name__ == "__main__":
    sys.exit(main())
