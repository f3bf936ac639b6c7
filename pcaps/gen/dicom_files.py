#!/usr/bin/env python3
"""Write the synthetic DICOM test objects used by pcaps/gen/dicom.sh.

Real software (pydicom) writes real Part 10 files; the pixel data is a synthetic
gradient, the patients are fake. Output is deterministic: fixed UIDs (2.25 UIDs
from name-based UUIDs), fixed dates, no randomness.

Usage: dicom_files.py OUTDIR

Writes:
  ct_1.dcm  CT 512x512 16-bit, Explicit VR Little Endian        (~512 KiB)  TESTPATIENT^ALPHA
  ct_2.dcm  CT 256x256 16-bit, Implicit VR Little Endian        (~128 KiB)  TESTPATIENT^ALPHA
  ct_3.dcm  CT 1024x1024 16-bit scout, Explicit VR Little Endian (~2 MiB)   TESTPATIENT^ALPHA
  mr_1.dcm, mr_2.dcm  MR 128x128 16-bit, Explicit VR LE (~32 KiB) TESTPATIENT^BRAVO
The PHI values used here are listed in pcaps/dicom/PHI_VALUES.txt.
"""
import sys
import uuid
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"

PATIENTS = {
    "ALPHA": dict(name="TESTPATIENT^ALPHA", pid="PID-TEST-0001", dob="19700101", sex="F",
                  accession="ACC-TEST-0001"),
    "BRAVO": dict(name="TESTPATIENT^BRAVO", pid="PID-TEST-0002", dob="19800202", sex="M",
                  accession="ACC-TEST-0002"),
}

DEVICES = {
    "CT": dict(Manufacturer="GE MEDICAL SYSTEMS", ManufacturerModelName="LightSpeed VCT",
               StationName="CTSTATION01", SoftwareVersions="gmp_vct.47",
               DeviceSerialNumber="TESTSN-CT-0001", InstitutionName="MEDTAP TEST HOSPITAL",
               InstitutionalDepartmentName="RADIOLOGY"),
    "MR": dict(Manufacturer="SIEMENS", ManufacturerModelName="MAGNETOM Skyra",
               StationName="MRSTATION02", SoftwareVersions="syngo MR E11",
               DeviceSerialNumber="TESTSN-MR-0002", InstitutionName="MEDTAP TEST HOSPITAL",
               InstitutionalDepartmentName="RADIOLOGY"),
}


def uid(seed: str) -> str:
    # 2.25 + a name-based UUID (PS3.5 B.2): deterministic. (pydicom's generate_uid ignores
    # entropy_srcs when prefix is None and returns a random UUID4 UID.)
    return "2.25." + str(uuid.uuid5(uuid.NAMESPACE_URL, "medtap-test/" + seed).int)


def pixels(rows: int, cols: int, seed: int) -> bytes:
    # 16-bit little-endian synthetic gradient with a ring, deterministic.
    out = bytearray(rows * cols * 2)
    cy, cx = rows // 2, cols // 2
    r2 = (min(rows, cols) // 3) ** 2
    i = 0
    for y in range(rows):
        dy = (y - cy) * (y - cy)
        for x in range(cols):
            v = (x * 7 + y * 3 + seed * 101) & 0x0FFF
            d = dy + (x - cx) * (x - cx)
            if abs(d - r2) < r2 // 20:
                v = 0x0FFF
            out[i] = v & 0xFF
            out[i + 1] = v >> 8
            i += 2
    return bytes(out)


def make(path: Path, modality: str, sop_class: str, patient: str, study: str, series: int,
         number: int, rows: int, cols: int, ts: str, date: str, time: str):
    p = PATIENTS[patient]
    sop_uid = uid(f"{study}-{series}-{number}-sop")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ts
    meta.ImplementationClassUID = "1.2.826.0.1.3680043.8.498.1"  # pydicom's own root
    meta.ImplementationVersionName = "PYDICOM_3"

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL" if modality == "CT" else "M"]
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = date
    ds.SeriesDate = date
    ds.ContentDate = date
    ds.StudyTime = time
    ds.ContentTime = time
    ds.AccessionNumber = p["accession"]
    ds.Modality = modality
    for k, v in DEVICES[modality].items():
        setattr(ds, k, v)
    ds.ReferringPhysicianName = "TESTREFERRER^DOC"
    ds.StudyDescription = f"MEDTAP TEST {modality}"
    ds.SeriesDescription = f"SYNTHETIC {modality} SERIES {series}"
    ds.PatientName = p["name"]
    ds.PatientID = p["pid"]
    ds.PatientBirthDate = p["dob"]
    ds.PatientSex = p["sex"]
    ds.StudyInstanceUID = uid(f"{study}-study")
    ds.SeriesInstanceUID = uid(f"{study}-{series}-series")
    ds.StudyID = "1"
    ds.SeriesNumber = series
    ds.InstanceNumber = number
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = cols
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    if modality == "CT":
        ds.RescaleIntercept = -1024
        ds.RescaleSlope = 1
    ds.PixelData = pixels(rows, cols, number + series * 10)
    ds.save_as(path, enforce_file_format=True)


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    E, I = ExplicitVRLittleEndian, ImplicitVRLittleEndian
    make(out / "ct_1.dcm", "CT", CT_IMAGE_STORAGE, "ALPHA", "ct-alpha", 1, 1, 512, 512, E,
         "20240315", "101500")
    make(out / "ct_2.dcm", "CT", CT_IMAGE_STORAGE, "ALPHA", "ct-alpha", 1, 2, 256, 256, I,
         "20240315", "101501")
    make(out / "ct_3.dcm", "CT", CT_IMAGE_STORAGE, "ALPHA", "ct-alpha", 2, 1, 1024, 1024, E,
         "20240315", "101400")
    make(out / "mr_1.dcm", "MR", MR_IMAGE_STORAGE, "BRAVO", "mr-bravo", 1, 1, 128, 128, E,
         "20240316", "083000")
    make(out / "mr_2.dcm", "MR", MR_IMAGE_STORAGE, "BRAVO", "mr-bravo", 1, 2, 128, 128, E,
         "20240316", "083001")
    for f in sorted(out.glob("*.dcm")):
        print(f"{f.name}\t{f.stat().st_size}")


if __name__ == "__main__":
    main()
