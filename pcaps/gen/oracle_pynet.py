#!/usr/bin/env python3
"""pynetdicom SCU with unusual options for pcaps/gen/oracle.sh.

  oracle_pynet.py HOST PORT CALLED_AE FILES_DIR

One association to the SCP (Orthanc in oracle.sh) with: max PDU 4096 (data sets span many
P-DATA PDUs/PDVs), 6 presentation contexts (one for a SOP class the SCP does not support, so
the A-ASSOCIATE-AC carries a refusal), user identity negotiation (username + passcode; the
passcode is fake and must never appear in medtap's output), asynchronous operations window,
SCP/SCU role selection and SOP class extended negotiation items. It sends C-ECHO, two C-STOREs
(an Implicit VR CT of ~128 KiB, an Explicit VR MR) and a study-level C-FIND, then releases.
"""
import sys

from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE, build_role
from pynetdicom.pdu_primitives import (AsynchronousOperationsWindowNegotiation,
                                       SOPClassExtendedNegotiation, UserIdentityNegotiation)

host, port, called, d = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ae = AE(ae_title="PYNET_SMALLPDU")
ae.maximum_pdu_size = 4096  # what this SCU receives (also passed as max_pdu below)
ae.add_requested_context("1.2.840.10008.1.1")
ae.add_requested_context("1.2.840.10008.5.1.4.1.1.2", ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"])
ae.add_requested_context("1.2.840.10008.5.1.4.1.1.4", ["1.2.840.10008.1.2.1"])
ae.add_requested_context("1.2.840.10008.5.1.4.1.2.2.1")
ae.add_requested_context("1.2.840.10008.5.1.4.1.1.481.1", ["1.2.840.10008.1.2.4.50"])  # RT Image, JPEG
ae.add_requested_context("1.2.840.10008.5.1.1.40")  # Procedure Log? (a class Orthanc refuses)

ui = UserIdentityNegotiation()
ui.user_identity_type = 2
ui.primary_field = b"tech01"
ui.secondary_field = b"FakePass-0racle"
ui.positive_response_requested = True
aow = AsynchronousOperationsWindowNegotiation()
aow.maximum_number_operations_invoked = 4
aow.maximum_number_operations_performed = 4
ext = SOPClassExtendedNegotiation()
ext.sop_class_uid = "1.2.840.10008.5.1.4.1.2.2.1"
ext.service_class_application_information = b"\x01\x01\x01"
role = build_role("1.2.840.10008.5.1.4.1.1.4", scu_role=True, scp_role=True)

assoc = ae.associate(host, port, ae_title=called, max_pdu=4096, ext_neg=[ui, aow, ext, role])
if not assoc.is_established:
    sys.exit("association failed")
assoc.send_c_echo()
for f in ("ct_2.dcm", "mr_1.dcm"):
    st = assoc.send_c_store(dcmread(f"{d}/{f}"))
    print(f, st.Status if st else None)
q = Dataset()
q.QueryRetrieveLevel = "STUDY"
q.PatientID = ""
q.StudyInstanceUID = ""
q.ModalitiesInStudy = ""
for status, _ in assoc.send_c_find(q, "1.2.840.10008.5.1.4.1.2.2.1"):
    print("find", status.Status if status else None)
assoc.release()
