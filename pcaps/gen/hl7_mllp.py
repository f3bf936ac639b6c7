#!/usr/bin/env python3
"""HL7 v2 over MLLP peers for pcaps/gen/hl7.sh, built on python-hl7 (hl7.mllp, hl7.parse,
Message.create_ack). Run inside the script's network namespaces.

  hl7_mllp.py server --port P [--encoding iso-8859-1] [--lifetime S]
      MLLP listener ("TEST_ENGINE"): acknowledges every message with an original-mode ACK:
        AA  normally;
        AR  (+ ERR 200 "Unsupported message type") for message types other than ADT/ORU/ORM;
        AE  (+ ERR 101 "Required field missing" at PID^1^3) when PID-3 is empty.
      A frame that is cut short by the next start block (0x0B) - its 0x1C 0x0D end block is
      missing - is discarded and reported; the following complete frame is processed.
      Exits after --lifetime seconds (bounded).

  hl7_mllp.py client --host H --port P --scenario NAME
      scenarios: adt_orm, oru_pump, nak, large_oru, latin1, nonstd, missing_end_block

Every patient is fake; pcaps/hl7/PHI_VALUES.txt lists all PHI values used here.
Tested with python-hl7 0.4.5.
"""
import argparse
import asyncio
import socket
import sys
import time

import hl7
from hl7.mllp import open_hl7_connection, start_hl7_server

SB, EB, CR = b"\x0b", b"\x1c", b"\x0d"
LIMIT = 4 * 1024 * 1024
ENGINE_APP, ENGINE_FAC = "TEST_ENGINE", "TESTHOSP"
SUPPORTED = {"ADT", "ORU", "ORM"}


def log(*a):
    print("[hl7-peer]", *a, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------ server
def build_ack(msg: hl7.Message) -> hl7.Message:
    msh = msg.segment("MSH")
    ctrl = str(msh(10))
    mtype = str(msh(9)(1)(1))
    code, err, text = "AA", None, None
    if mtype not in SUPPORTED:
        code, text = "AR", "Unsupported message type"
        err = "ERR|||200^Unsupported message type^HL70357|E|||Unsupported message type " + mtype
    else:
        try:
            pid = msg.segment("PID")
        except KeyError:
            pid = None
        if pid is not None and (len(pid) <= 3 or not str(pid(3)).strip()):
            code, text = "AE", "Required field missing: PID-3"
            err = "ERR||PID^1^3^1|101^Required field missing^HL70357|E|||PID-3 patient identifier list is empty"
    ack = msg.create_ack(ack_code=code, message_id="ACK" + ctrl, application=ENGINE_APP,
                         facility=ENGINE_FAC)
    if err is None:
        return ack
    text_ack = str(ack).rstrip("\r").split("\r")
    text_ack[1] = text_ack[1] + "|" + text
    return hl7.parse("\r".join(text_ack + [err]) + "\r")


async def handle(reader, writer, encoding):
    peer = writer.get_extra_info("peername")
    try:
        while True:
            try:
                block = await reader.readblock()
            except asyncio.IncompleteReadError:
                break
            # a start block inside the block means the previous frame lost its end block:
            # resynchronise on the last start block (what interface engines do)
            last = block.rfind(SB)
            if last > 0:
                log(f"{peer}: discarded {last} bytes of a frame without end block")
                block = block[last + 1:]
            msg = hl7.parse(block.decode(encoding))
            ack = build_ack(msg)
            log(f"{peer}: {msg.segment('MSH')(9)} {msg.segment('MSH')(10)} -> "
                f"{ack.segment('MSA')(1)} ({len(block)} bytes)")
            writer.writemessage(ack)
            await writer.drain()
    finally:
        writer.close()


async def server_main(a):
    server = await start_hl7_server(lambda r, w: handle(r, w, a.encoding), host="0.0.0.0",
                                    port=a.port, limit=LIMIT, encoding=a.encoding)
    log(f"listening on {a.port} (encoding {a.encoding})")
    async with server:
        await asyncio.sleep(a.lifetime)
    log("lifetime over, exiting")


# ------------------------------------------------------------------------------------ client
def seg(*lines):
    return "\r".join(lines) + "\r"


def msh(app, fac, ts, mtype, ctrl, version="2.5.1", charset=None):
    m = f"MSH|^~\\&|{app}|{fac}|{ENGINE_APP}|{ENGINE_FAC}|{ts}||{mtype}|{ctrl}|P|{version}"
    if charset:
        m += "|||AL|NE||" + charset  # MSH-15/16, MSH-18
    return m


PID_CHARLIE = ("PID|1||PID-TEST-0101^^^TESTHOSP^MR||TESTPATIENT^CHARLIE^^^^^L||19850505|M|||"
               "1 TEST STREET^^TESTCITY^TS^00000^^H||^PRN^PH^^^000^5550101|||||ACCT-TEST-0101|000-00-0101")


def msgs_adt_orm():
    return [
        seg(msh("TEST_EHR_ADT", "TESTHOSP", "20240315101500", "ADT^A01^ADT_A01", "ADT00001"),
            "EVN|A01|20240315101500",
            PID_CHARLIE,
            "NK1|1|TESTKIN^DELTA^^^^^L|SPO^Spouse^HL70063|1 TEST STREET^^TESTCITY^TS^00000|^PRN^PH^^^000^5550102",
            "PV1|1|I|ICU^101^A^TESTHOSP||||0100^TESTDOC^ALPHA|||MED||||1|||0100^TESTDOC^ALPHA|IN||||||||||||||||||||||||||20240315101500",
            "IN1|1|PLAN-TEST|INS-TEST-0001|TEST INSURANCE CO"),
        seg(msh("TEST_EHR_ADT", "TESTHOSP", "20240315113000", "ADT^A08^ADT_A01", "ADT00002"),
            "EVN|A08|20240315113000",
            PID_CHARLIE,
            "PV1|1|I|ICU^102^A^TESTHOSP||||0100^TESTDOC^ALPHA|||MED||||1|||0100^TESTDOC^ALPHA|IN"),
        seg(msh("TEST_CPOE", "TESTHOSP", "20240315114500", "ORM^O01^ORM_O01", "ORM00001"),
            PID_CHARLIE,
            "PV1|1|I|ICU^102^A^TESTHOSP",
            "ORC|NW|ORD-TEST-0001^TEST_CPOE||||||||||0100^TESTDOC^ALPHA",
            "OBR|1|ORD-TEST-0001^TEST_CPOE||24627-2^CT CHEST^LN|||20240315114500||||||||||||||||CT"),
    ]


def msgs_oru_pump():
    # IHE PCD-01-like infusion pump observation report from a pump gateway. OBX-18 (Equipment
    # Instance Identifier, EI): model ^ vendor ^ EUI-64 derived from the pump's Baxter MAC
    # 58:42:E4:... ^ EUI-64.
    eq = "SIGMA SPECTRUM^BAXTER^5842E4FFFE770242^EUI-64"
    return [seg(
        msh("PUMP_GATEWAY", "TESTHOSP", "20240315120000", "ORU^R01^ORU_R01", "PUMP00001",
            version="2.6"),
        "PID|1||PID-TEST-0102^^^TESTHOSP^MR||TESTPATIENT^DELTA^^^^^L||19900606|F",
        "PV1|1|I|ICU^103^A^TESTHOSP",
        "OBR|1|PUMP00001^PUMP_GATEWAY||69986^MDC_DEV_PUMP_INFUS_VMD^MDC|||20240315120000",
        f"OBX|1|ST|68063^MDC_ATTR_PT_ID^MDC|1.0.0.0|PID-TEST-0102||||||R|||20240315120000||||{eq}",
        f"OBX|2|NM|157784^MDC_FLOW_FLUID_PUMP^MDC|1.1.1.1|125|263762^MDC_DIM_MILLI_L_PER_HR^MDC|||||R|||20240315120000||||{eq}",
        f"OBX|3|NM|157872^MDC_VOL_FLUID_TBI^MDC|1.1.1.2|500|263762^MDC_DIM_MILLI_L^MDC|||||R|||20240315120000||||{eq}",
        f"OBX|4|NM|157864^MDC_VOL_FLUID_DELIV^MDC|1.1.1.3|42.5|263762^MDC_DIM_MILLI_L^MDC|||||R|||20240315120000||||{eq}",
        f"OBX|5|ST|184330^MDC_DEV_PUMP_INFUS_STATUS^MDC|1.1.1.4|infusing||||||R|||20240315120000||||{eq}",
    )]


def msgs_nak():
    return [
        # PID-3 empty -> AE
        seg(msh("TEST_EHR_ADT", "TESTHOSP", "20240315130000", "ADT^A04^ADT_A01", "ADT00003"),
            "EVN|A04|20240315130000",
            "PID|1||||TESTPATIENT^ECHO^^^^^L||19750707|F",
            "PV1|1|O|CLINIC^1^^TESTHOSP"),
        # a query the listener does not support -> AR
        seg(msh("TEST_EHR_ADT", "TESTHOSP", "20240315130100", "QRY^A19^QRY_A19", "QRY00001"),
            "QRD|20240315130100|R|I|QRY00001|||10^RD|PID-TEST-0103^TESTPATIENT^ECHO|DEM"),
    ]


def msgs_large_oru():
    # a long monitoring result: 1,200 OBX segments, ~200 KB in one MLLP frame
    lines = [msh("TEST_MONITOR_GW", "TESTHOSP", "20240315140000", "ORU^R01^ORU_R01", "ORU00001",
                 version="2.6"),
             "PID|1||PID-TEST-0104^^^TESTHOSP^MR||TESTPATIENT^FOXTROT^^^^^L||19600808|M",
             "PV1|1|I|ICU^104^A^TESTHOSP",
             "OBR|1|ORU00001^TEST_MONITOR_GW||69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC|||20240315140000"]
    hr = [72, 73, 75, 74, 71, 70, 72, 76, 78, 77]
    for i in range(1, 1201):
        t = 140000 + (i // 60) * 100 + i % 60
        lines.append(
            f"OBX|{i}|NM|147842^MDC_ECG_HEART_RATE^MDC|1.1.1.{i}|{hr[i % 10]}|264864^MDC_DIM_BEAT_PER_MIN^MDC"
            f"|50-120||||R|||20240315{t:06d}||||INTELLIVUE MX800^PHILIPS^0009FBFFFE770205^EUI-64")
    return [seg(*lines)]


def msgs_latin1():
    return [seg(msh("TEST_EHR_ADT", "KLINIKUM", "20240315150000", "ADT^A01^ADT_A01", "ADT00004",
                    version="2.5", charset="8859/1"),
                "EVN|A01|20240315150000",
                "PID|1||PID-TEST-0105^^^KLINIKUM^MR||MÜLLER^JÖRG^^^^^L||19550909|M|||"
                "TESTSTRAßE 1^^MÜNCHEN^^80000^DEU^H",
                "PV1|1|I|STATION^201^A^KLINIKUM")]


def msgs_nonstd():
    return [seg(msh("TEST_LAB", "TESTHOSP", "20240315160000", "ORU^R01^ORU_R01", "LAB00001"),
                "PID|1||PID-TEST-0101^^^TESTHOSP^MR||TESTPATIENT^CHARLIE^^^^^L||19850505|M",
                "OBR|1|LAB-TEST-0001^TEST_LAB||2345-7^Glucose^LN|||20240315155500",
                "OBX|1|NM|2345-7^Glucose^LN||95|mg/dL^mg/dL^UCUM|70-99|N|||F|||20240315155500")]


async def send_all(host, port, messages, encoding, pause=0.05):
    reader, writer = await open_hl7_connection(host, port, limit=LIMIT, encoding=encoding)
    try:
        for text in messages:
            msg = hl7.parse(text)
            writer.writemessage(msg)
            await writer.drain()
            ack = await asyncio.wait_for(reader.readmessage(), 10)
            log(f"sent {msg.segment('MSH')(9)} {msg.segment('MSH')(10)} ({len(text)} chars) -> "
                f"{ack.segment('MSA')(1)}")
            await asyncio.sleep(pause)
    finally:
        writer.close()
        await writer.wait_closed()


def missing_end_block(host, port):
    """Raw socket: python-hl7 always frames correctly, so the broken frame is written by hand."""
    broken = seg(msh("TEST_EHR_ADT", "TESTHOSP", "20240315170000", "ADT^A08^ADT_A01", "ADT00005"),
                 "EVN|A08|20240315170000",
                 "PID|1||PID-TEST-0101^^^TESTHOSP^MR||TESTPATIENT^CHARLIE^^^^^L||19850505|M")
    good = seg(msh("TEST_EHR_ADT", "TESTHOSP", "20240315170100", "ADT^A08^ADT_A01", "ADT00006"),
               "EVN|A08|20240315170100",
               "PID|1||PID-TEST-0101^^^TESTHOSP^MR||TESTPATIENT^CHARLIE^^^^^L||19850505|M")
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(SB + broken.encode("ascii"))            # no 0x1C 0x0D
        time.sleep(0.2)
        s.sendall(SB + good.encode("ascii") + EB + CR)
        buf = b""
        deadline = time.monotonic() + 10
        while EB + CR not in buf and time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        if EB + CR not in buf:
            raise SystemExit("no ACK for the good frame")
        ack = hl7.parse(buf[1:buf.index(EB + CR)].decode("ascii"))
        log(f"sent broken ADT00005 (no end block) + ADT00006 -> {ack.segment('MSA')(1)} "
            f"for {ack.segment('MSA')(2)}")
        s.shutdown(socket.SHUT_WR)
        s.recv(1024)


def client_main(a):
    enc = "ascii"
    if a.scenario == "missing_end_block":
        return missing_end_block(a.host, a.port)
    if a.scenario == "latin1":
        enc = "iso-8859-1"
    messages = {"adt_orm": msgs_adt_orm, "oru_pump": msgs_oru_pump, "nak": msgs_nak,
                "large_oru": msgs_large_oru, "latin1": msgs_latin1,
                "nonstd": msgs_nonstd}[a.scenario]()
    asyncio.run(send_all(a.host, a.port, messages, enc))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("server")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--encoding", default="ascii")
    s.add_argument("--lifetime", type=float, default=60.0)
    c = sub.add_parser("client")
    c.add_argument("--host", required=True)
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--scenario", required=True,
                   choices=["adt_orm", "oru_pump", "nak", "large_oru", "latin1", "nonstd",
                            "missing_end_block"])
    a = p.parse_args()
    if a.cmd == "server":
        asyncio.run(server_main(a))
    else:
        client_main(a)


if __name__ == "__main__":
    main()
