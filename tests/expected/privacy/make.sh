#!/usr/bin/env bash
# Writes tests/expected/privacy/secrets.tsv: (capture, secret) rows that tests/privacy.rs
# checks never leave medtap. tshark is the oracle:
#   FTP PASS arguments, HTTP basic-auth passwords and Authorization credentials (the Basic
#   token, the Digest response), SNMP community strings of the captures in pcaps/corpus/legacy
#   and pcaps/legacy (values shorter than 5 characters are left out: they occur by chance
#   in unrelated output), the passwords and communities pcaps/gen/legacy.sh used (LEGACY below)
#   wherever tshark shows them in a pcaps/legacy capture's payload bytes (telnet keystrokes,
#   the rexec preamble), plus every PHI value the DICOM and HL7 capture generators used
#   (pcaps/dicom/PHI_VALUES.txt, pcaps/hl7/PHI_VALUES.txt), each kept only if tshark shows it
#   (UTF-8 or Latin-1) in the TCP payload bytes of those captures (and of pcaps/detect, which
#   pcaps/gen/anomaly_lab.sh made with the same patients). New rows are one line: "capture<TAB>secret".
set -euo pipefail
cd "$(dirname "$0")/../../.."
out=tests/expected/privacy/secrets.tsv
# the secrets pcaps/gen/legacy.sh uses (account password, SNMP community, SNMPv3 passphrases)
LEGACY="Lg-Ward7-Pw9 Lg-Ward7-Ro Lg-V3-Auth-Pw Lg-V3-Priv-Pw"
{
  printf 'capture\tsecret\n'
  for f in pcaps/corpus/legacy/*.pcap pcaps/legacy/*.pcap; do
    rel=${f#pcaps/}
    { tshark -r "$f" -Y 'ftp.request.command == "PASS"' -T fields -e ftp.request.arg 2>/dev/null
      tshark -r "$f" -Y 'http.authbasic' -T fields -e http.authbasic 2>/dev/null | sed 's/^[^:]*://'
      tshark -r "$f" -Y 'snmp.community' -T fields -e snmp.community 2>/dev/null | tr ',' '\n'
      if [ "${rel#legacy/}" != "$rel" ]; then
        tshark -r "$f" -Y 'http.authorization' -T fields -e http.authorization 2>/dev/null |
          sed -n 's/^Basic //p; s/.*response="\([0-9a-f]*\)".*/\1/p'
        bytes=$(mktemp)
        tshark -r "$f" -Y 'tcp.payload or udp.payload' -T fields -e tcp.payload -e udp.payload 2>/dev/null |
          tr -d '\n\t:' | xxd -r -p >"$bytes"
        for v in $LEGACY; do grep -aqF -- "$v" "$bytes" && echo "$v"; done
        rm -f "$bytes"
      fi
    } | awk 'length($0) >= 5' | sort -u | while IFS= read -r s; do printf '%s\t%s\n' "$rel" "$s"; done
  done
  for proto in dicom hl7; do
    # the TCP payload bytes of every capture (DICOM data sets and HL7 messages in clear)
    bytes=$(mktemp)
    for f in pcaps/$proto/*.pcap; do
      tshark -r "$f" -Y tcp.payload -T fields -e tcp.payload 2>/dev/null | tr -d '\n:' | xxd -r -p >>"$bytes"
    done
    while IFS= read -r v; do
      [ -n "$v" ] || continue
      l1=$(printf '%s' "$v" | iconv -f UTF-8 -t ISO-8859-1 2>/dev/null || true)
      if grep -aqF -- "$v" "$bytes" || { [ -n "$l1" ] && LC_ALL=C grep -aqF -- "$l1" "$bytes"; }; then
        printf '%s/\t%s\n' "$proto" "$v"
      else
        echo "make.sh: $proto PHI value '$v' not in the payload bytes of pcaps/$proto" >&2
      fi
    done < pcaps/$proto/PHI_VALUES.txt
    rm -f "$bytes"
  done
  # the behaviour-anomaly captures (pcaps/gen/anomaly_lab.sh) carry the same fake patients
  bytes=$(mktemp)
  for f in pcaps/detect/*.pcap; do
    tshark -r "$f" -Y tcp.payload -T fields -e tcp.payload 2>/dev/null | tr -d '\n:' | xxd -r -p >>"$bytes"
  done
  cat pcaps/dicom/PHI_VALUES.txt pcaps/hl7/PHI_VALUES.txt | while IFS= read -r v; do
    [ -n "$v" ] && grep -aqF -- "$v" "$bytes" && printf 'detect/\t%s\n' "$v"
    true
  done
  rm -f "$bytes"
} > "$out"
echo "wrote $out: $(($(wc -l < "$out") - 1)) rows"
