#!/usr/bin/env python3
"""Play the judge on any capture: medtap's events against tshark's dissectors.

    bench/oracle.py CAPTURE [--dicom-port N]... [--hl7-port N]... [--medtap PATH]

Runs `medtap replay --events` on CAPTURE and the tshark recipes of the expected-file makers
(tests/expected/conv/make.sh, tests/expected/dicom/make.sh + oracle.py, tests/expected/hl7/make.sh)
on the same capture, projects medtap's `flow`, `dicom`, `hl7` and `tls` events to what tshark
shows, and prints every difference. Exit 0 when all agree, 1 otherwise.

- conversations: packets/bytes each way per unordered TCP/UDP endpoint pair;
- DICOM (on each --dicom-port, default: every server port of a SYN whose payload tshark calls
  dicom with the heuristic on): AE titles, per-side implementation UID/version/max PDU,
  presentation contexts, result, reject/abort fields, PDU counts, DIMSE commands and statuses;
- HL7 (on each --hl7-port): per sender/receiver, MSH-3..12, MSA-1/2, segment ids, with the
  corrections of tests/expected/hl7/make.sh for tshark 4.0.17 (a last segment without CR is
  read from the TCP payload; a batch's header is its first MSH; MSH-9 joined with '^');
- TLS: per client port, ClientHello version/SNI/supported_versions, ServerHello version/cipher.
Needs tshark 4.0 (Debian 12) and python3. medtap: --medtap, $MEDTAP, or target/debug/medtap.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXP = os.path.join(ROOT, "tests", "expected")


def sh(args, stdin=None):
    return subprocess.run(args, input=stdin, capture_output=True, check=False).stdout


def medtap_events(medtap, pcap):
    with tempfile.TemporaryDirectory() as d:
        ev = os.path.join(d, "eve.json")
        r = subprocess.run([medtap, "replay", "--no-progress", "--events", ev, pcap],
                           capture_output=True, check=False)
        if r.returncode != 0:
            sys.exit(f"medtap failed: {r.stderr.decode()}")
        with open(ev, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]


def ep(ip, port):
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def add(m, proto, a, b, v):
    if a > b:
        a, b, v = b, a, [v[2], v[3], v[0], v[1]]
    e = m.setdefault((proto, a, b), [0, 0, 0, 0])
    for i in range(4):
        e[i] += v[i]


def conv(pcap, events):
    out = sh(["tshark", "-n", "-q", "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
              "--disable-protocol", "snmp", "-r", pcap, "-z", "conv,tcp", "-z", "conv,udp",
              "-X", "lua_script:" + os.path.join(EXP, "conv", "conv_exact.lua")])
    want_list = json.loads(sh(["python3", os.path.join(EXP, "conv", "conv_json.py"), pcap], out))
    want, got = {}, {}
    for c in want_list:
        add(want, c["proto"], c["a"], c["b"], [c["packets_a_to_b"], c["bytes_a_to_b"],
                                                c["packets_b_to_a"], c["bytes_b_to_a"]])
    for e in events:
        if e.get("event_type") != "flow" or e.get("proto") not in ("TCP", "UDP"):
            continue
        f = e["flow"]
        add(got, e["proto"].lower(), ep(e["src_ip"], e["src_port"]), ep(e["dest_ip"], e["dest_port"]),
            [f["pkts_toserver"], f["bytes_toserver"], f["pkts_toclient"], f["bytes_toclient"]])
    return diff("conv", want, got)


def pick(d, keys):
    return {k: d[k] for k in keys if k in d}


def dicom_project(e):
    d = e["dicom"]
    m = pick(d, ["calling_ae", "called_ae", "result", "pdus", "reject"])
    m["client_port"] = e["src_port"]
    for side in ("requestor", "acceptor"):
        if side in d:
            m[side] = pick(d[side], ["implementation_class_uid", "implementation_version_name",
                                     "max_pdu_length"])
    if "abort" in d:
        m["abort"] = pick(d["abort"], ["source", "reason"])
    ctx = [pick(c, ["id", "abstract_syntax", "transfer_syntaxes", "result", "accepted_transfer_syntax"])
           for c in d.get("presentation_contexts") or []]
    if ctx:
        m["presentation_contexts"] = ctx
    m["commands"] = [pick(c, ["command", "message_id", "message_id_being_responded_to",
                              "affected_sop_class_uid", "affected_sop_instance_uid",
                              "move_destination", "status"]) for c in d.get("commands") or []]
    return m


def dicom(pcap, events, ports):
    args = ["tshark", "-n", "-r", pcap]
    for p in ports:
        args += ["-d", f"tcp.port=={p},dicom"]
    args += ["-o", "dicom.pdv_reassemble:FALSE", "-o", "dicom.tag_tree:TRUE", "-Y", "dicom", "-T", "pdml"]
    want = json.loads(sh(["python3", os.path.join(EXP, "dicom", "oracle.py"), ""], sh(args)))
    want = {a.get("client_port"): a for a in want["associations"]}
    got = {}
    for e in events:
        if e.get("event_type") == "dicom":
            got[e["src_port"]] = dicom_project(e)
    return diff("dicom", want, got)


HL7_SPLIT = r'''
import json, sys
out = []
for line in sys.stdin.buffer.read().decode("utf-8", "replace").split("\n"):
    if not line:
        continue
    frame, sip, sport, dip, dport, segs, payload = line.split("\t", 6)
    segs = [s[:-2] if s.endswith("\\r") else s for s in segs.split("\x1e")]
    batch = segs[0][:3] in ("FHS", "BHS")
    msh = next((s for s in segs if s.startswith("MSH")), segs[0]) if batch else segs[0]
    sep = msh[3] if len(msh) > 3 else "|"
    parts = msh.split(sep)
    if len(parts) > 8 and parts[1]:
        parts[8] = "^".join(parts[8].split(parts[1][0]))
    ids = [s.split(sep, 1)[0] for s in segs]
    raw = bytes.fromhex(payload.replace(":", "").split("\x1e")[-1])
    end = raw.rfind(b"\x1c")
    if end > 0 and raw[end - 1:end] != b"\r":
        ids.append(raw[:end].rsplit(b"\r", 1)[-1][:3].decode("latin-1"))
    m = {"src": f"{sip}:{sport}", "dst": f"{dip}:{dport}",
         "msh": {f"MSH-{k + 1}": parts[k] if k < len(parts) else "" for k in range(2, 12)},
         "segments": ids}
    msa = next((s for s in segs if s.startswith("MSA" + sep)), None)
    if msa is not None:
        p = msa.split(sep)
        m["msa_1"] = p[1] if len(p) > 1 else ""
        m["msa_2"] = p[2] if len(p) > 2 else ""
    out.append(m)
json.dump(out, sys.stdout)
'''


def hl7(pcap, events, ports):
    args = ["tshark", "-n", "-r", pcap]
    for p in ports:
        args += ["-d", f"tcp.port=={p},hl7"]
    args += ["-Y", "hl7", "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=\x1e", "-e", "frame.number",
             "-e", "ip.src", "-e", "tcp.srcport", "-e", "ip.dst", "-e", "tcp.dstport", "-e", "hl7.segment", "-e", "tcp.payload"]
    msgs = json.loads(sh(["python3", "-c", HL7_SPLIT], sh(args)))
    want, got = {}, {}
    keys = [("MSH-3", "sending_application"), ("MSH-4", "sending_facility"),
            ("MSH-5", "receiving_application"), ("MSH-6", "receiving_facility"),
            ("MSH-10", "control_id"), ("MSH-11", "processing_id"), ("MSH-12", "version")]
    for t in msgs:
        w = {k: t["msh"][f] for f, k in keys}
        w["MSH-9"] = t["msh"]["MSH-9"]
        w["msa_1"], w["msa_2"] = t.get("msa_1", ""), t.get("msa_2", "")
        w["segments"] = t["segments"]
        want.setdefault(f'{t["src"]}>{t["dst"]}', []).append(w)
    for e in events:
        if e.get("event_type") != "hl7":
            continue
        h = e["hl7"]
        g = {k: h.get(k, "") for _, k in keys}
        g["MSH-9"] = h.get("message_type", "") + ("^" + h["message_structure"] if h.get("message_structure") else "")
        g["msa_1"], g["msa_2"] = h.get("ack_code", ""), h.get("ack_control_id", "")
        g["segments"] = h.get("segments", [])
        got.setdefault(f'{e["src_ip"]}:{e["src_port"]}>{e["dest_ip"]}:{e["dest_port"]}', []).append(g)
    return diff("hl7", want, got)


def tls(pcap, events):
    out = sh(["tshark", "-n", "-r", pcap, "-Y", "(tls.handshake.type==1 || tls.handshake.type==2) && !(tls.record.version==0x0002)", "-T", "fields",
              "-E", "occurrence=f", "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "tls.handshake.type",
              "-e", "tls.handshake.version", "-e", "tls.handshake.extensions_server_name",
              "-e", "tls.handshake.ciphersuite", "-e", "tls.handshake.extensions.supported_version"]).decode()
    want = {}
    for line in out.splitlines():
        sp, dp, typ, ver, sni, cs, sv = (line.split("\t") + [""] * 7)[:7]
        if typ.startswith("1"):
            want.setdefault(int(sp), {})["client"] = {"version": ver, "sni": sni}
        elif typ.startswith("2"):
            want.setdefault(int(dp), {})["server"] = {"version": sv or ver, "cipher": cs}
    got = {}
    for e in events:
        # SSLv2 is left out of tshark's side (its message types are not TLS handshake types)
        if e.get("event_type") == "tls" and not e["tls"].get("sslv2"):
            got[e["src_port"]] = e["tls"]
    ok = True
    for port in sorted(set(want) | set(got)):
        w, g = want.get(port, {}), got.get(port, {})
        gv = {"client": {"version": g.get("client_version"), "sni": g.get("sni", "")},
              "server": {"version": g.get("server_selected_version") or g.get("server_version"),
                         "cipher": g.get("cipher_suite")}} if g else {}
        gv = {k: v for k, v in gv.items() if k in w or k == "client"}
        if w != gv:
            ok = False
            print(f"tls client port {port}: tshark {w}\n      medtap {gv}")
    print(f"tls: {len(want)} tshark, {len(got)} medtap, {'AGREE' if ok else 'DISAGREE'}")
    return ok


def diff(what, want, got):
    ok = True
    for k in sorted(set(want) | set(got), key=str):
        if k not in got:
            print(f"{what} {k}: only tshark: {json.dumps(want[k])[:600]}")
            ok = False
        elif k not in want:
            print(f"{what} {k}: only medtap: {json.dumps(got[k])[:600]}")
            ok = False
        elif want[k] != got[k]:
            ok = False
            print(f"{what} {k}: DIFFER")
            w, g = want[k], got[k]
            if isinstance(w, dict):
                for f in sorted(set(w) | set(g)):
                    if w.get(f) != g.get(f):
                        print(f"   {f}: tshark={json.dumps(w.get(f))[:800]}\n   {' ' * len(f)}  medtap={json.dumps(g.get(f))[:800]}")
            elif isinstance(w, list) and len(w) == len(g):
                for i, (a, b) in enumerate(zip(w, g)):
                    if a != b:
                        print(f"   #{i}: tshark={json.dumps(a)[:800]}\n       medtap={json.dumps(b)[:800]}")
            else:
                print(f"   tshark={json.dumps(w)[:800]}\n   medtap={json.dumps(g)[:800]}")
    print(f"{what}: {len(want)} tshark, {len(got)} medtap, {'AGREE' if ok else 'DISAGREE'}")
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pcap")
    ap.add_argument("--dicom-port", type=int, action="append", default=[])
    ap.add_argument("--hl7-port", type=int, action="append", default=[])
    ap.add_argument("--medtap", default=os.environ.get("MEDTAP") or os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "debug", "medtap"))
    a = ap.parse_args()
    events = medtap_events(a.medtap, a.pcap)
    ok = conv(a.pcap, events)
    if a.dicom_port:
        ok &= dicom(a.pcap, events, a.dicom_port)
    if a.hl7_port:
        ok &= hl7(a.pcap, events, a.hl7_port)
    ok &= tls(a.pcap, events)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
