#!/usr/bin/env bash
# Regenerate tests/expected/dicom/<capture>.json from tshark's DICOM dissector (the oracle that
# tests/dicom.rs compares medtap's `dicom` events with).
#
#   bash tests/expected/dicom/make.sh      # from anywhere; needs tshark (4.0.17 was used) and python3
#
# For each capture: one `-d tcp.port==N,dicom` per DICOM port (a comma list does not work in
# tshark 4.0), PDV reassembly OFF (with it on, tshark 4.0.17 mislabels the C-STORE-RSP after
# store.pcap's 2 MiB data set as more Pixel Data), and tag_tree ON so that every DIMSE element
# is a dicom.tag / dicom.tag.value.* field. The output is PDML rather than `-T fields`: the
# fields are the ones of the TSHARK.md recipe (dicom.assoc.ae.calling, dicom.pctx.id,
# dicom.pctx.xfer.syntax, dicom.userinfo.uid, ...), but `-T fields` flattens them, so the
# transfer syntaxes of one presentation context and the value of one DIMSE tag could not be
# told apart from the next one's. oracle.py groups them by TCP stream (one association each).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PCAPS=$(cd "$HERE/../../../pcaps/dicom" && pwd)

declare -A PORTS=(
  [echo]=104 [store]=104 [find]=11112 [move_get]="11112 11113" [reject]="104 4242"
  [abort]="104 11112" [nonstd_port]=5678 [tls]=2762 [orthanc]="4242 11112" [pynet_smallpdu]=4242 [orthanc_get_reject]=4242 [pynet_ipv6]=11112 [orthanc_worklist]=4242
  [dcmjs]=11112 [gdcm]="11112 11113"
)

for name in echo store find move_get reject abort nonstd_port tls orthanc pynet_smallpdu orthanc_get_reject pynet_ipv6 orthanc_worklist dcmjs gdcm; do
  args=(-n -r "$PCAPS/$name.pcap")
  for p in ${PORTS[$name]}; do args+=(-d "tcp.port==$p,dicom"); done
  args+=(-o dicom.pdv_reassemble:FALSE -o dicom.tag_tree:TRUE -Y dicom -T pdml)
  cmd="tshark ${args[*]}"
  tshark "${args[@]}" 2>/dev/null \
    | python3 "$HERE/oracle.py" "${cmd//$PCAPS/pcaps\/dicom}" >"$HERE/$name.json"
  echo "$name.json: $(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["associations"]), "associations")' "$HERE/$name.json")"
done
