#!/usr/bin/env python3
"""DICOM and HL7 peers for the behaviour-anomaly lab (pcaps/gen/anomaly_lab.sh), run inside its
network namespaces. Real libraries: pynetdicom for the DICOM SCP, python-hl7 (hl7.mllp) for
the MLLP client; the broken-framing client builds its messages with python-hl7 and writes them
on a plain socket (python-hl7 always frames correctly, so a misconfigured sender is imitated
there: that framing is the only hand-made part).

  anomaly_peers.py strict-scp --port P --ae AE [--lifetime S]
      pynetdicom Storage/Verification SCP that rejects associations whose called AE title is
      not AE (require_called_aet=True: A-ASSOCIATE-RJ permanent, service-user, reason 7
      "called AE title not recognised"). Exits after --lifetime seconds.

  anomaly_peers.py hl7-send --host H --port P --app APP --facility FAC --count N
                   [--interval S] [--first N]
      python-hl7 MLLP client: N ADT^A08 messages from MSH-3 APP / MSH-4 FAC, one every S
      seconds on one connection, each acknowledged by the listener (hl7_mllp.py server).

  anomaly_peers.py hl7-no-end-block --host H --port P --app APP --count N [--wait S]
      a sender misconfigured to omit the MLLP end block (0x1C 0x0D): each of N messages is
      written as 0x0B + message, then it waits S seconds for an acknowledgement that never
      comes (the listener still waits for the end block) and sends the next one.

Patients are fake (TESTPATIENT^...); the PHI values are those of pcaps/hl7/PHI_VALUES.txt.
Tested with pynetdicom 3.0.4, pydicom 3.0.2, python-hl7 0.4.5.
"""
import argparse
import asyncio
import socket
import sys
import time

SB, EB, CR = b"\x0b", b"\x1c", b"\x0d"


def log(*a):
    print("[anomaly-peer]", *a, file=sys.stderr, flush=True)


def strict_scp(a):
    from pynetdicom import AE, AllStoragePresentationContexts, evt
    from pynetdicom.sop_class import Verification

    ae = AE(ae_title=a.ae)
    ae.require_called_aet = True
    ae.add_supported_context(Verification)
    for cx in AllStoragePresentationContexts[:20]:
        ae.add_supported_context(cx.abstract_syntax)

    def on_store(event):
        return 0x0000

    def on_rejected(event):
        log(f"rejected association from {event.address}")

    server = ae.start_server(("0.0.0.0", a.port), block=False,
                             evt_handlers=[(evt.EVT_C_STORE, on_store),
                                           (evt.EVT_REJECTED, on_rejected)])
    log(f"listening on {a.port} as {a.ae} (called AE title checked)")
    time.sleep(a.lifetime)
    server.shutdown()


def adt_a08(app, fac, n):
    ts = f"20240316{8 + n // 60:02d}{n % 60:02d}00"
    return "\r".join([
        f"MSH|^~\\&|{app}|{fac}|TEST_ENGINE|TESTHOSP|{ts}||ADT^A08^ADT_A01|{app[:6]}{n:05d}|P|2.5.1",
        f"EVN|A08|{ts}",
        "PID|1||PID-TEST-0101^^^TESTHOSP^MR||TESTPATIENT^CHARLIE^^^^^L||19850505|M",
        "PV1|1|I|ICU^101^A^TESTHOSP",
    ]) + "\r"


async def hl7_send(a):
    import hl7
    from hl7.mllp import open_hl7_connection

    reader, writer = await open_hl7_connection(a.host, a.port, encoding="ascii")
    try:
        for i in range(a.first, a.first + a.count):
            msg = hl7.parse(adt_a08(a.app, a.facility, i))
            writer.writemessage(msg)
            await writer.drain()
            ack = await asyncio.wait_for(reader.readmessage(), 10)
            log(f"{a.app}: sent {msg.segment('MSH')(10)} -> {ack.segment('MSA')(1)}")
            if i + 1 < a.first + a.count:
                await asyncio.sleep(a.interval)
    finally:
        writer.close()
        await writer.wait_closed()


def hl7_no_end_block(a):
    import hl7

    with socket.create_connection((a.host, a.port), timeout=10) as s:
        s.settimeout(a.wait)
        for i in range(a.count):
            msg = hl7.parse(adt_a08(a.app, "TESTHOSP", 100 + i))
            s.sendall(SB + str(msg).encode("ascii"))  # the end block is never sent
            try:
                got = s.recv(4096)
                log(f"unexpected reply {got[:20]!r}")
            except socket.timeout:
                log(f"no acknowledgement for {msg.segment('MSH')(10)} (no end block sent)")
        s.shutdown(socket.SHUT_WR)
        s.settimeout(2)
        try:
            s.recv(1024)
        except socket.timeout:
            pass


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("strict-scp")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--ae", required=True)
    s.add_argument("--lifetime", type=float, default=60.0)
    c = sub.add_parser("hl7-send")
    c.add_argument("--host", required=True)
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--app", required=True)
    c.add_argument("--facility", default="TESTHOSP")
    c.add_argument("--count", type=int, default=1)
    c.add_argument("--interval", type=float, default=1.0)
    c.add_argument("--first", type=int, default=1)
    b = sub.add_parser("hl7-no-end-block")
    b.add_argument("--host", required=True)
    b.add_argument("--port", type=int, required=True)
    b.add_argument("--app", required=True)
    b.add_argument("--count", type=int, default=12)
    b.add_argument("--wait", type=float, default=0.5)
    a = p.parse_args()
    if a.count > 1000 if hasattr(a, "count") else False:
        raise SystemExit("count is bounded to 1000")
    if a.cmd == "strict-scp":
        strict_scp(a)
    elif a.cmd == "hl7-send":
        asyncio.run(hl7_send(a))
    else:
        hl7_no_end_block(a)


if __name__ == "__main__":
    main()
