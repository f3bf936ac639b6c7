#!/usr/bin/env python3
"""pynetdicom peers used by pcaps/gen/dicom.sh (run inside its network namespaces).

Subcommands:
  qrscp     Query/Retrieve SCP (C-ECHO, C-FIND, C-MOVE, C-GET) serving DICOM files
  rejectscp Verification/Storage SCP with require_called_aet=True (wrong called AE -> A-ASSOCIATE-RJ)
  abortscp  Verification SCP that answers C-ECHO by aborting the association (A-ABORT from the acceptor)
  abortscu  SCU that associates, sends C-ECHO, then aborts (A-ABORT from the requestor)

Every server exits by itself after --lifetime seconds (bounded), or when killed.
Tested with pynetdicom 3.0.4 / pydicom 3.0.2.
"""
import argparse
import fnmatch
import sys
import time

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, evt
from pynetdicom.sop_class import (
    CTImageStorage,
    MRImageStorage,
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

TS = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
STORAGE = [CTImageStorage, MRImageStorage]


def log(*a):
    print("[pynetdicom-peer]", *a, file=sys.stderr, flush=True)


def serve(ae, port, lifetime, **kw):
    server = ae.start_server(("0.0.0.0", port), block=False, **kw)
    log(f"listening on {port} as {ae.ae_title}")
    deadline = time.monotonic() + lifetime
    try:
        while time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        server.shutdown()
    log("lifetime over, exiting")


def matches(query: Dataset, ds: Dataset) -> bool:
    for kw in ("PatientName", "PatientID", "StudyInstanceUID", "AccessionNumber", "Modality"):
        if kw not in query:
            continue
        want = str(query.get(kw, "") or "")
        if not want:
            continue  # universal match
        have = str(ds.get(kw, "") or "")
        if "*" in want or "?" in want:
            if not fnmatch.fnmatchcase(have, want):
                return False
        elif have != want:
            return False
    return True


def cmd_qrscp(a):
    instances = [dcmread(f) for f in a.files]
    studies = {}
    for ds in instances:
        studies.setdefault(ds.StudyInstanceUID, []).append(ds)
    dests = {}
    for d in a.move_dest or []:
        ae_title, hostport = d.split("=", 1)
        host, port = hostport.rsplit(":", 1)
        dests[ae_title] = (host, int(port))

    def select(identifier):
        level = str(identifier.get("QueryRetrieveLevel", "STUDY"))
        out = []
        for suid, members in sorted(studies.items()):
            if not matches(identifier, members[0]):
                continue
            if level in ("PATIENT", "STUDY"):
                out.append(members)
            else:
                out.append([m for m in members if matches(identifier, m)])
        return level, out

    def on_find(event):
        ident = event.identifier
        level, found = select(ident)
        log(f"C-FIND level={level} -> {len(found)} matches")
        for members in found:
            if event.is_cancelled:
                yield (0xFE00, None)
                return
            src = members[0]
            rsp = Dataset()
            rsp.SpecificCharacterSet = "ISO_IR 100"
            rsp.QueryRetrieveLevel = level
            for elem in ident:
                kw = elem.keyword
                if kw in ("QueryRetrieveLevel", "SpecificCharacterSet") or not kw:
                    continue
                if kw == "ModalitiesInStudy":
                    rsp.ModalitiesInStudy = sorted({str(m.Modality) for m in members})
                elif kw == "NumberOfStudyRelatedInstances":
                    rsp.NumberOfStudyRelatedInstances = len(members)
                elif kw in src:
                    setattr(rsp, kw, src.get(kw))
                else:
                    setattr(rsp, kw, elem.value)
            rsp.RetrieveAETitle = a.aet
            yield (0xFF00, rsp)

    def on_move(event):
        level, found = select(event.identifier)
        dest = dests.get(event.move_destination.decode().strip() if isinstance(
            event.move_destination, bytes) else str(event.move_destination).strip())
        log(f"C-MOVE to {event.move_destination!r} -> {dest}")
        if dest is None:
            yield (None, None)
            return
        yield dest
        todo = [ds for members in found for ds in members]
        yield len(todo)
        for ds in todo:
            if event.is_cancelled:
                yield (0xFE00, None)
                return
            yield (0xFF00, ds)

    def on_get(event):
        level, found = select(event.identifier)
        todo = [ds for members in found for ds in members]
        log(f"C-GET -> {len(todo)} instances")
        yield len(todo)
        for ds in todo:
            if event.is_cancelled:
                yield (0xFE00, None)
                return
            yield (0xFF00, ds)

    ae = AE(ae_title=a.aet)
    ae.maximum_pdu_size = a.max_pdu
    ae.add_supported_context(Verification)
    for c in (PatientRootQueryRetrieveInformationModelFind, StudyRootQueryRetrieveInformationModelFind,
              PatientRootQueryRetrieveInformationModelMove, StudyRootQueryRetrieveInformationModelMove,
              PatientRootQueryRetrieveInformationModelGet, StudyRootQueryRetrieveInformationModelGet):
        ae.add_supported_context(c, TS)
    for c in STORAGE:
        # C-GET: we are the storage SCU on the requestor's association (SCP/SCU role selection)
        ae.add_supported_context(c, TS, scu_role=True, scp_role=True)
        # C-MOVE: sub-association to the move destination proposes these
        ae.add_requested_context(c, TS)
    handlers = [(evt.EVT_C_FIND, on_find), (evt.EVT_C_MOVE, on_move), (evt.EVT_C_GET, on_get)]
    serve(ae, a.port, a.lifetime, evt_handlers=handlers)


def cmd_rejectscp(a):
    ae = AE(ae_title=a.aet)
    ae.require_called_aet = True
    ae.add_supported_context(Verification)
    for c in STORAGE:
        ae.add_supported_context(c, TS)
    serve(ae, a.port, a.lifetime)


def cmd_abortscp(a):
    def on_echo(event):
        log("C-ECHO received: aborting the association (acceptor-side A-ABORT)")
        # inside a handler abort() only queues the A-ABORT (pynetdicom >= 3.0): it goes out
        # before any C-ECHO-RSP, so the requestor never gets an answer
        event.assoc.abort()
        return 0x0000

    ae = AE(ae_title=a.aet)
    ae.add_supported_context(Verification)
    serve(ae, a.port, a.lifetime, evt_handlers=[(evt.EVT_C_ECHO, on_echo)])


def cmd_abortscu(a):
    ae = AE(ae_title=a.aet)
    ae.add_requested_context(Verification)
    assoc = ae.associate(a.host, a.port, ae_title=a.aec)
    if not assoc.is_established:
        log("association not established")
        sys.exit(1)
    st = assoc.send_c_echo()
    log(f"C-ECHO status 0x{st.Status:04X}" if st else "C-ECHO: no response")
    time.sleep(0.1)
    assoc.abort()
    log("association aborted by the requestor")


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("qrscp", "rejectscp", "abortscp"):
        s = sub.add_parser(name)
        s.add_argument("--port", type=int, required=True)
        s.add_argument("--aet", required=True)
        s.add_argument("--lifetime", type=float, default=120.0)
        s.add_argument("--max-pdu", type=int, default=16384)
        if name == "qrscp":
            s.add_argument("--move-dest", action="append", help="AE=host:port")
            s.add_argument("files", nargs="+")
    s = sub.add_parser("abortscu")
    s.add_argument("--host", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--aet", required=True)
    s.add_argument("--aec", required=True)
    a = p.parse_args()
    {"qrscp": cmd_qrscp, "rejectscp": cmd_rejectscp, "abortscp": cmd_abortscp,
     "abortscu": cmd_abortscu}[a.cmd](a)


if __name__ == "__main__":
    main()
