//! Fuzz the DICOM upper-layer parsers as a stream: the probe, PDU headers, A-ASSOCIATE-RQ/AC
//! bodies, A-ASSOCIATE-RJ, A-ABORT, the PDVs of P-DATA-TF and the command sets they carry.
//!
//! Invariants: nothing panics; what comes back is a suffix of the input; decoded lists stay
//! within their caps; a PDV never reaches past its PDU.
//! Seed corpus: `parsers/fuzz/corpus/dicom_pdu/` (PDUs cut from pcaps/dicom captures).
#![no_main]

use libfuzzer_sys::fuzz_target;
use medtap_parsers::dicom::{self, dimse, items, pdu};

fuzz_target!(|data: &[u8]| {
    let _ = dicom::looks_like_dicom(data);
    let mut rest = data;
    for _ in 0..256 {
        let Ok((body, h)) = pdu::parse_pdu_header(rest) else {
            break;
        };
        assert_eq!(body.len() + pdu::PDU_HEADER_LEN, rest.len());
        let _ = pdu::believable_header(&h);
        let n = (h.len as usize).min(body.len());
        let b = &body[..n];
        rest = &body[n..];
        match h.pdu_type {
            pdu::PduType::ASSOCIATE_RQ | pdu::PduType::ASSOCIATE_AC => {
                let r = if h.pdu_type == pdu::PduType::ASSOCIATE_RQ {
                    pdu::parse_associate_rq(b)
                } else {
                    pdu::parse_associate_ac(b)
                };
                if let Ok(a) = r {
                    assert!(a.contexts.len() <= items::MAX_CONTEXTS);
                    assert!(a.context_items >= a.contexts.len());
                    assert!(a.unknown_items.len() <= items::MAX_SUB_ITEMS);
                    assert_eq!(a.called_ae.len(), 16);
                    for c in &a.contexts {
                        assert!(c.transfer_syntaxes.len() <= items::MAX_TRANSFER_SYNTAXES);
                    }
                    if let Some(u) = &a.user_info {
                        assert!(u.roles.len() <= items::MAX_SUB_ITEMS);
                        assert!(u.extended_negotiation.len() <= items::MAX_SUB_ITEMS);
                    }
                }
            }
            pdu::PduType::ASSOCIATE_RJ => {
                let _ = pdu::parse_associate_rj(b);
            }
            pdu::PduType::ABORT => {
                let _ = pdu::parse_abort(b);
            }
            pdu::PduType::P_DATA_TF => {
                for (k, p) in pdu::pdvs(b).enumerate() {
                    let Ok(p) = p else { break };
                    assert!(k < b.len());
                    assert_eq!(p.value.len() as u32, p.header.value_len());
                    if p.header.is_command() {
                        if let Ok(cs) = dimse::parse_command_set(p.value) {
                            let _ = dimse::command_name(cs.command_field);
                            let _ = cs.status_class();
                        }
                    }
                }
            }
            _ => {}
        }
    }
});
