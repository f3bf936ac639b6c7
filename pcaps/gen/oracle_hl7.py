#!/usr/bin/env python3
"""HL7 v2 / MLLP peers for pcaps/gen/oracle.sh (captures judged against tshark, see bench/oracle.py).

  oracle_hl7.py serve-pyhl7 PORT    python-hl7's asyncio MLLP server (hl7.mllp.start_hl7_server),
                                     any number of messages per connection, answers each with
                                     the ACK python-hl7 builds (Message.create_ack, AA)
  oracle_hl7.py serve-hl7apy PORT   hl7apy's MLLPServer (one message per connection), ACK built
                                     with hl7apy (MSA-1 AA, or AE for ORU messages)
  oracle_hl7.py messages DIR        writes the message files mllp_send (python-hl7) sends:
      multi.hl7   several messages (ADT^A04, ORM^O01, a batch FHS/BHS/MSH/BTS/FTS, ADT^A08
                  with a truncation character '#' in MSH-2, v2.7 style) each ended by 0x1C
      single_N.hl7 one message each for hl7apy (ADT^A01 with '!' as component separator,
                  ORU^R01 with MSH-9.3 message structure)
Patients are fake (TESTPATIENT^...), listed in pcaps/hl7/PHI_VALUES.txt.
"""
import asyncio
import sys

CR = "\r"


def msg(*segs):
    return CR.join(segs) + CR


def messages(d):
    ms = [
        msg("MSH|^~\\&|REGADT|MCM_WEST|IFENG|HUB|20260101120000||ADT^A04^ADT_A01|ORA0001|P|2.5.1",
            "EVN|A04|20260101120000",
            "PID|1||PAT7001^^^MCM^MR||TESTPATIENT^CHARLIE||19700101|M",
            "PV1|1|O|CLINIC^^^MCM"),
        msg("MSH|^~\\&|CPOE|MCM_WEST|RIS|RADIOLOGY|20260101120100||ORM^O01|ORA0002|P|2.3",
            "PID|1||PAT7001^^^MCM^MR||TESTPATIENT^CHARLIE",
            "ORC|NW|ORD448",
            "OBR|1|ORD448||71020^CHEST XRAY 2V"),
        # a batch: file and batch header around two messages
        msg("FHS|^~\\&|LABSYS|MCM_LAB|IFENG|HUB|20260101120200||||FILE01",
            "BHS|^~\\&|LABSYS|MCM_LAB|IFENG|HUB|20260101120200||||BATCH01",
            "MSH|^~\\&|LABSYS|MCM_LAB|IFENG|HUB|20260101120200||ORU^R01|ORA0003|P|2.4",
            "PID|1||PAT7002^^^MCM^MR||TESTPATIENT^DELTA",
            "OBX|1|NM|GLU^Glucose||5.4|mmol/L",
            "MSH|^~\\&|LABSYS|MCM_LAB|IFENG|HUB|20260101120201||ORU^R01|ORA0004|P|2.4",
            "PID|1||PAT7002^^^MCM^MR||TESTPATIENT^DELTA",
            "OBX|1|NM|K^Potassium||4.1|mmol/L",
            "BTS|2",
            "FTS|1"),
        msg("MSH|^~\\&#|REGADT|MCM_WEST|IFENG|HUB|20260101120300||ADT^A08^ADT_A01|ORA0005|P|2.7",
            "EVN||20260101120300",
            "PID|1||PAT7001^^^MCM^MR||TESTPATIENT^CHARLIE"),
    ]
    with open(f"{d}/multi.hl7", "w", newline="") as f:
        for m in ms:
            f.write("\x0b" + m + "\x1c\r")
    singles = [
        msg("MSH|!~\\&|MONITOR|ICU_B|HIS|MCM|20260101121000||ADT!A01|ORA0101|P|2.3",
            "EVN|A01|20260101121000",
            "PID|1||PAT7003!!!MCM!MR||TESTPATIENT!ECHO"),
        msg("MSH|^~\\&|PUMPGW|ICU_B|EMR|MCM|20260101121100||ORU^R01^ORU_R01|ORA0102|P|2.6",
            "PID|1||PAT7003^^^MCM^MR||TESTPATIENT^ECHO",
            "OBR|1|||PUMP^Infusion status",
            "OBX|1|ST|RATE^Rate||12.5|mL/h"),
    ]
    for i, m in enumerate(singles):
        with open(f"{d}/single_{i}.hl7", "w", newline="") as f:
            f.write("\x0b" + m + "\x1c\r")


async def pyhl7(port):
    import hl7
    import hl7.mllp

    async def handle(reader, writer):
        try:
            while not writer.is_closing():
                m = await reader.readmessage()
                writer.writemessage(m.create_ack())
                await writer.drain()
        except asyncio.IncompleteReadError:
            if not writer.is_closing():
                writer.close()
                await writer.wait_closed()

    async with await hl7.mllp.start_hl7_server(handle, host="0.0.0.0", port=port) as srv:
        await srv.serve_forever()


def hl7apy_server(port):
    from hl7apy.core import Message
    from hl7apy.mllp import AbstractHandler, MLLPServer
    from hl7apy.parser import parse_message

    class Ack(AbstractHandler):
        def reply(self):
            m = parse_message(self.incoming_message, find_groups=False)
            code = "AE" if m.msh.msh_9.msh_9_1.value == "ORU" else "AA"
            ack = Message("ACK", version=m.msh.msh_12.value)
            ack.msh.msh_3 = m.msh.msh_5.value
            ack.msh.msh_4 = m.msh.msh_6.value
            ack.msh.msh_5 = m.msh.msh_3.value
            ack.msh.msh_6 = m.msh.msh_4.value
            ack.msh.msh_7 = "20260101121500"
            ack.msh.msh_10 = "ACK" + m.msh.msh_10.value
            ack.msa.msa_1 = code
            ack.msa.msa_2 = m.msh.msh_10.value
            return ack.to_mllp()

    handlers = {"ADT^A01": (Ack,), "ORU^R01": (Ack,), "ADT^A01^ADT_A01": (Ack,),
                "ORU^R01^ORU_R01": (Ack,)}
    MLLPServer("0.0.0.0", port, handlers).serve_forever()


if __name__ == "__main__":
    if sys.argv[1] == "messages":
        messages(sys.argv[2])
    elif sys.argv[1] == "serve-pyhl7":
        asyncio.run(pyhl7(int(sys.argv[2])))
    elif sys.argv[1] == "serve-hl7apy":
        hl7apy_server(int(sys.argv[2]))
