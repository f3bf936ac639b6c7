#!/usr/bin/env python3
"""Turn tshark's DICOM PDML (stdin) into the per-association expected file (stdout).

Usage: tshark ... -T pdml | oracle.py "<the tshark command, for the record>"
One association per TCP stream, keyed by the client (requestor) port. Values are taken as
tshark shows them: AE titles trimmed, UIDs from inside the "Name (UID)" display strings.
"""
import json
import re
import sys
import xml.etree.ElementTree as ET

PDU_NAMES = {1: "a_associate_rq", 2: "a_associate_ac", 3: "a_associate_rj", 4: "p_data_tf",
             5: "a_release_rq", 6: "a_release_rp", 7: "a_abort"}
COMMANDS = {0x0001: "C-STORE-RQ", 0x8001: "C-STORE-RSP", 0x0010: "C-GET-RQ", 0x8010: "C-GET-RSP",
            0x0020: "C-FIND-RQ", 0x8020: "C-FIND-RSP", 0x0021: "C-MOVE-RQ", 0x8021: "C-MOVE-RSP",
            0x0030: "C-ECHO-RQ", 0x8030: "C-ECHO-RSP", 0x0FFF: "C-CANCEL-RQ",
            # DIMSE-N (PS3.7 E.1-2; tshark's Info column names them the same)
            0x0100: "N-EVENT-REPORT-RQ", 0x8100: "N-EVENT-REPORT-RSP", 0x0110: "N-GET-RQ",
            0x8110: "N-GET-RSP", 0x0120: "N-SET-RQ", 0x8120: "N-SET-RSP", 0x0130: "N-ACTION-RQ",
            0x8130: "N-ACTION-RSP", 0x0140: "N-CREATE-RQ", 0x8140: "N-CREATE-RSP",
            0x0150: "N-DELETE-RQ", 0x8150: "N-DELETE-RSP"}


def uid(show):
    """'Verification SOP Class (1.2.840.10008.1.1)' or '1.2.840.10008.1.1 (Verification ...)'."""
    show = show.strip().rstrip("\x00")
    m = re.search(r"\(([0-9.]+)\)\s*$", show)
    if m:
        return m.group(1)
    return show.split(" ")[0]


def fields(node, name):
    return [f for f in node.iter("field") if f.get("name") == name]


def first(node, name):
    f = fields(node, name)
    return f[0].get("show") if f else None


def children_named(node, name):
    return [c for c in node if c.get("name") == name]


def peer(pdu):
    p = {}
    u = first(pdu, "dicom.userinfo.uid")
    v = first(pdu, "dicom.userinfo.version")
    m = first(pdu, "dicom.max_pdu_len")
    if u is not None:
        p["implementation_class_uid"] = u.strip()
    if v is not None:
        p["implementation_version_name"] = v.strip()
    if m is not None:
        p["max_pdu_length"] = int(m)
    return p


def contexts(pdu, rq):
    out = []
    for node in pdu.iter("field"):
        if not children_named(node, "dicom.pctx.id"):
            continue
        c = {"id": int(children_named(node, "dicom.pctx.id")[0].get("show"), 16)}
        ts = [uid(f.get("show")) for f in fields(node, "dicom.pctx.xfer.syntax")]
        if rq:
            a = first(node, "dicom.pctx.abss.syntax")
            if a is not None:
                c["abstract_syntax"] = uid(a)
            c["transfer_syntaxes"] = ts
        else:
            r = children_named(node, "dicom.pctx.result")
            c["result"] = int(r[0].get("show"), 16) if r else None
            if c["result"] == 0 and ts:
                c["accepted_transfer_syntax"] = ts[0]
        out.append(c)
    return out


def command(pdv):
    tags = {}
    for el in pdv:
        t = children_named(el, "dicom.tag")
        if not t:
            continue
        tag = int(t[0].get("show"), 16)
        for vname in ("dicom.tag.value.16u", "dicom.tag.value.32u", "dicom.tag.value.str"):
            v = children_named(el, vname)
            if v:
                tags[tag] = v[0].get("show")
                break
    if 0x0100 not in tags:
        return None
    cf = int(tags[0x0100])
    c = {"command": COMMANDS.get(cf, "other")}
    for tag, key, conv in ((0x0110, "message_id", int), (0x0120, "message_id_being_responded_to", int),
                           (0x0002, "affected_sop_class_uid", uid),
                           (0x1000, "affected_sop_instance_uid", uid),
                           (0x0600, "move_destination", str.strip), (0x0900, "status", int)):
        if tag in tags:
            c[key] = conv(tags[tag])
    return c


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    assocs = {}
    for _, pkt in ET.iterparse(sys.stdin, events=("end",)):
        if pkt.tag != "packet":
            continue
        stream = srcport = dstport = None
        for proto in pkt.iter("proto"):
            if proto.get("name") == "tcp":
                stream = int(first(proto, "tcp.stream"))
                srcport = int(first(proto, "tcp.srcport"))
                dstport = int(first(proto, "tcp.dstport"))
        for pdu in [p for p in pkt.iter("proto") if p.get("name") == "dicom"]:
            t = first(pdu, "dicom.pdu.type")
            if t is None:
                continue
            t = int(t, 16)
            a = assocs.setdefault(stream, {"pdus": {}, "commands": []})
            name = PDU_NAMES.get(t, "unknown")
            a["pdus"][name] = a["pdus"].get(name, 0) + 1
            if t == 1:
                a["client_port"] = srcport
                a["calling_ae"] = first(pdu, "dicom.assoc.ae.calling").strip()
                a["called_ae"] = first(pdu, "dicom.assoc.ae.called").strip()
                a["requestor"] = peer(pdu)
                a["presentation_contexts"] = contexts(pdu, True)
            elif t == 2:
                a.setdefault("client_port", dstport)
                a["acceptor"] = peer(pdu)
                for c in contexts(pdu, False):
                    for p in a.get("presentation_contexts", []):
                        if p["id"] == c["id"]:
                            p.update({k: v for k, v in c.items() if k != "id"})
            elif t == 3:
                a["reject"] = {k: int(first(pdu, f"dicom.assoc.reject.{k}"))
                               for k in ("result", "source", "reason")}
            elif t == 7:
                a["abort"] = {k: int(first(pdu, f"dicom.assoc.abort.{k}")) for k in ("source", "reason")}
            elif t == 4:
                for pdv in pdu.iter("field"):
                    fl = children_named(pdv, "dicom.pdv.flags")
                    if fl and int(fl[0].get("show"), 16) & 1:
                        c = command(pdv)
                        if c:
                            a["commands"].append(c)
        pkt.clear()
    out = []
    for s in sorted(assocs):
        a = assocs[s]
        p = a["pdus"]
        a["result"] = ("rejected" if "a_associate_rj" in p else "aborted" if "a_abort" in p
                       else "accepted" if "a_release_rp" in p else "incomplete")
        out.append(a)
    out.sort(key=lambda a: a.get("client_port", 0))
    json.dump({"tshark": cmd, "associations": out}, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
