//! Items and sub-items of A-ASSOCIATE-RQ/AC: application context, presentation contexts,
//! user information. PS3.8 9.3.2.1-9.3.3.3 and Annex D (PS3.7) for the user information
//! sub-items.
//!
//! Limits and recoverable failures first: an item whose length runs past its parent is
//! invalid (never read past); lists are cut at [`MAX_CONTEXTS`], [`MAX_TRANSFER_SYNTAXES`] and
//! [`MAX_SUB_ITEMS`] with `truncated` set; unknown sub-item types are kept by type. The user
//! identity sub-item (0x58) is reported by type and flags only: the primary field (user name,
//! ticket, assertion, token) and the secondary field (password) are skipped, never copied.

use super::DicomError;
use crate::bytes::{be16, be32};

/// Item header: type (1), reserved (1), length (2, big endian). PS3.8 9.3.2.
pub const ITEM_HEADER_LEN: usize = 4;

pub const ITEM_APPLICATION_CONTEXT: u8 = 0x10;
pub const ITEM_PRESENTATION_CONTEXT_RQ: u8 = 0x20;
pub const ITEM_PRESENTATION_CONTEXT_AC: u8 = 0x21;
pub const ITEM_ABSTRACT_SYNTAX: u8 = 0x30;
pub const ITEM_TRANSFER_SYNTAX: u8 = 0x40;
pub const ITEM_USER_INFORMATION: u8 = 0x50;
pub const SUB_MAX_LENGTH: u8 = 0x51;
pub const SUB_IMPLEMENTATION_CLASS_UID: u8 = 0x52;
pub const SUB_ASYNC_OPS_WINDOW: u8 = 0x53;
pub const SUB_ROLE_SELECTION: u8 = 0x54;
pub const SUB_IMPLEMENTATION_VERSION_NAME: u8 = 0x55;
pub const SUB_SOP_CLASS_EXTENDED: u8 = 0x56;
pub const SUB_SOP_CLASS_COMMON_EXTENDED: u8 = 0x57;
pub const SUB_USER_IDENTITY_RQ: u8 = 0x58;
pub const SUB_USER_IDENTITY_AC: u8 = 0x59;

/// Presentation contexts kept per PDU: context ids are odd numbers 1..=255 (PS3.8 9.3.2.2).
pub const MAX_CONTEXTS: usize = 128;
/// Transfer syntaxes kept per proposed context (toolkits propose up to ~35).
pub const MAX_TRANSFER_SYNTAXES: usize = 64;
/// Entries kept per other list (role selections, extended negotiations, unknown types).
pub const MAX_SUB_ITEMS: usize = 256;

/// One item: its type and value (after the 4-byte header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item<'a> {
    pub item_type: u8,
    pub value: &'a [u8],
}

/// Reads one item from `input` (which must hold all of it: items live inside a complete PDU).
pub fn parse_item(input: &[u8]) -> Result<(&[u8], Item<'_>), DicomError> {
    if input.len() < ITEM_HEADER_LEN {
        return Err(DicomError::invalid("item", 0, "truncated item header"));
    }
    let len = u16::from_be_bytes([input[2], input[3]]) as usize;
    let Some(value) = input.get(ITEM_HEADER_LEN..ITEM_HEADER_LEN + len) else {
        return Err(DicomError::invalid(
            "item",
            2,
            "item length past its parent",
        ));
    };
    Ok((
        &input[ITEM_HEADER_LEN + len..],
        Item {
            item_type: input[0],
            value,
        },
    ))
}

/// A presentation context from an RQ (0x20) or an AC (0x21).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PresentationContext<'a> {
    pub id: u8,
    /// RQ: the abstract syntax (sub-item 0x30). None in an AC.
    pub abstract_syntax: Option<&'a [u8]>,
    /// RQ: the proposed transfer syntaxes; AC: the accepted one (meaningful when result is 0).
    pub transfer_syntaxes: Vec<&'a [u8]>,
    /// AC only: 0 acceptance, 1 user-rejection, 2 no-reason (provider rejection),
    /// 3 abstract-syntax-not-supported, 4 transfer-syntaxes-not-supported.
    pub result: Option<u8>,
    /// Sub-item types other than those expected.
    pub unknown_items: Vec<u8>,
    pub truncated: bool,
}

/// Parses the value of a 0x20 item: id, 3 reserved bytes, then sub-items. PS3.8 9.3.2.2.
pub fn parse_presentation_context_rq(v: &[u8]) -> Result<PresentationContext<'_>, DicomError> {
    parse_context(v, true)
}

/// Parses the value of a 0x21 item: id, reserved, result/reason, reserved, then one transfer
/// syntax sub-item. PS3.8 9.3.3.2.
pub fn parse_presentation_context_ac(v: &[u8]) -> Result<PresentationContext<'_>, DicomError> {
    parse_context(v, false)
}

fn parse_context(v: &[u8], rq: bool) -> Result<PresentationContext<'_>, DicomError> {
    if v.len() < 4 {
        return Err(DicomError::invalid(
            "presentation-context",
            0,
            "shorter than 4 bytes",
        ));
    }
    let mut pc = PresentationContext {
        id: v[0],
        result: (!rq).then_some(v[2]),
        ..Default::default()
    };
    let mut rest = &v[4..];
    let mut off = 4;
    while !rest.is_empty() {
        let (r, it) = parse_item(rest).map_err(|e| e.shifted(off))?;
        off += rest.len() - r.len();
        rest = r;
        match it.item_type {
            ITEM_ABSTRACT_SYNTAX if rq && pc.abstract_syntax.is_none() => {
                pc.abstract_syntax = Some(it.value);
            }
            ITEM_TRANSFER_SYNTAX => {
                if pc.transfer_syntaxes.len() < MAX_TRANSFER_SYNTAXES {
                    pc.transfer_syntaxes.push(it.value);
                } else {
                    pc.truncated = true;
                }
            }
            t => {
                if pc.unknown_items.len() < MAX_SUB_ITEMS {
                    pc.unknown_items.push(t);
                } else {
                    pc.truncated = true;
                }
            }
        }
    }
    Ok(pc)
}

/// SCP/SCU role selection for one SOP class (sub-item 0x54, PS3.7 D.3.3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleSelection<'a> {
    pub sop_class_uid: &'a [u8],
    pub scu_role: u8,
    pub scp_role: u8,
}

/// The user identity negotiation of an RQ (sub-item 0x58, PS3.7 D.3.3.7): type and flags
/// only, never the fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserIdentity {
    /// 1 username, 2 username and passcode, 3 Kerberos, 4 SAML, 5 JWT.
    pub identity_type: u8,
    pub positive_response_requested: bool,
    /// Lengths only, for anomaly detection (a passcode present in clear).
    pub primary_len: u16,
    pub secondary_len: u16,
}

/// The user information item (0x50). PS3.8 9.3.2.3, PS3.7 D.3.3.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserInfo<'a> {
    /// 0x51: maximum length of a P-DATA-TF PDU the sender can receive (0 = no limit).
    pub max_pdu_length: Option<u32>,
    /// 0x52.
    pub implementation_class_uid: Option<&'a [u8]>,
    /// 0x55.
    pub implementation_version_name: Option<&'a [u8]>,
    /// 0x53: (max operations invoked, max operations performed).
    pub async_ops: Option<(u16, u16)>,
    /// 0x54, at most [`MAX_SUB_ITEMS`].
    pub roles: Vec<RoleSelection<'a>>,
    /// 0x56 and 0x57: SOP class UIDs with extended negotiation, at most [`MAX_SUB_ITEMS`].
    pub extended_negotiation: Vec<&'a [u8]>,
    /// 0x58 (RQ).
    pub user_identity: Option<UserIdentity>,
    /// 0x59 (AC): the acceptor answered the identity negotiation (its response is not kept).
    pub user_identity_response: bool,
    /// Sub-item types not known here, at most [`MAX_SUB_ITEMS`].
    pub unknown_items: Vec<u8>,
    pub truncated: bool,
}

/// Parses the value of a 0x50 item. A known sub-item too short for its fixed fields is an
/// error; one with extra bytes is accepted.
pub fn parse_user_info(v: &[u8]) -> Result<UserInfo<'_>, DicomError> {
    let mut ui = UserInfo::default();
    let mut rest = v;
    let mut off = 0;
    while !rest.is_empty() {
        let (r, it) = parse_item(rest).map_err(|e| e.shifted(off))?;
        let here = off;
        off += rest.len() - r.len();
        rest = r;
        let short = || DicomError::invalid("user-information", here, "sub-item too short");
        let b = it.value;
        match it.item_type {
            SUB_MAX_LENGTH => ui.max_pdu_length = Some(be32(b, 0).ok_or_else(short)?),
            SUB_IMPLEMENTATION_CLASS_UID => ui.implementation_class_uid = Some(b),
            SUB_IMPLEMENTATION_VERSION_NAME => ui.implementation_version_name = Some(b),
            SUB_ASYNC_OPS_WINDOW => {
                ui.async_ops = Some((be16(b, 0).ok_or_else(short)?, be16(b, 2).ok_or_else(short)?))
            }
            SUB_ROLE_SELECTION => {
                // UID length (2), UID, SCU role (1), SCP role (1).
                let n = be16(b, 0).ok_or_else(short)? as usize;
                let uid = b.get(2..2 + n).ok_or_else(short)?;
                let (Some(&scu), Some(&scp)) = (b.get(2 + n), b.get(3 + n)) else {
                    return Err(short());
                };
                if ui.roles.len() < MAX_SUB_ITEMS {
                    ui.roles.push(RoleSelection {
                        sop_class_uid: uid,
                        scu_role: scu,
                        scp_role: scp,
                    });
                } else {
                    ui.truncated = true;
                }
            }
            SUB_SOP_CLASS_EXTENDED | SUB_SOP_CLASS_COMMON_EXTENDED => {
                // 0x56: UID length (2), UID, application info. 0x57: sub-item version in the
                // reserved byte, then the same UID length (2) and UID first.
                let n = be16(b, 0).ok_or_else(short)? as usize;
                let uid = b.get(2..2 + n).ok_or_else(short)?;
                if ui.extended_negotiation.len() < MAX_SUB_ITEMS {
                    ui.extended_negotiation.push(uid);
                } else {
                    ui.truncated = true;
                }
            }
            SUB_USER_IDENTITY_RQ => {
                // Type (1), positive-response-requested (1), primary length (2), primary,
                // secondary length (2), secondary. Only lengths are read.
                let (Some(&t), Some(&resp)) = (b.first(), b.get(1)) else {
                    return Err(short());
                };
                let p = be16(b, 2).ok_or_else(short)?;
                let s = be16(b, 4 + p as usize).unwrap_or(0);
                ui.user_identity = Some(UserIdentity {
                    identity_type: t,
                    positive_response_requested: resp == 1,
                    primary_len: p,
                    secondary_len: s,
                });
            }
            SUB_USER_IDENTITY_AC => ui.user_identity_response = true,
            t => {
                if ui.unknown_items.len() < MAX_SUB_ITEMS {
                    ui.unknown_items.push(t);
                } else {
                    ui.truncated = true;
                }
            }
        }
    }
    Ok(ui)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dicom::pdu::tests::hex;

    /// move_get.pcap (getscu's A-ASSOCIATE-RQ): an SCP/SCU role selection sub-item for CT
    /// Image Storage, SCU role 0, SCP role 1 (tshark: dicom.userinfo.rolesel.*).
    #[test]
    fn role_selection_and_identity() {
        let uid = b"1.2.840.10008.5.1.4.1.1.2";
        let mut v = vec![0x54, 0, 0, (2 + uid.len() + 2) as u8, 0, uid.len() as u8];
        v.extend_from_slice(uid);
        v.extend_from_slice(&[0, 1]);
        // A user identity: username+passcode, primary "tech", secondary "s3cret".
        let mut id = hex("58 00 0000 02 01 0004");
        id.extend_from_slice(b"tech");
        id.extend_from_slice(&[0, 6]);
        id.extend_from_slice(b"s3cret");
        id[3] = (id.len() - 4) as u8;
        v.extend_from_slice(&id);
        let ui = parse_user_info(&v).unwrap();
        assert_eq!(
            ui.roles,
            vec![RoleSelection {
                sop_class_uid: b"1.2.840.10008.5.1.4.1.1.2",
                scu_role: 0,
                scp_role: 1
            }]
        );
        assert_eq!(
            ui.user_identity,
            Some(UserIdentity {
                identity_type: 2,
                positive_response_requested: true,
                primary_len: 4,
                secondary_len: 6
            })
        );
        // The value carries nothing of the fields.
        assert!(!format!("{ui:?}").contains("s3cret") && !format!("{ui:?}").contains("tech"));
        // A sub-item cut short is an error, not a panic.
        for n in 0..v.len() {
            let _ = parse_user_info(&v[..n]);
        }
    }

    #[test]
    fn item_bounds() {
        assert!(parse_item(&[0x10, 0, 0, 5, 1, 2]).is_err());
        let (rest, it) = parse_item(&[0x10, 0, 0, 1, 7, 9]).unwrap();
        assert_eq!(
            (it.item_type, it.value, rest),
            (0x10, &[7u8][..], &[9u8][..])
        );
        assert!(parse_presentation_context_ac(&[1, 0]).is_err());
        // Unknown sub-items are kept by type.
        let pc = parse_presentation_context_rq(&[3, 0, 0, 0, 0x77, 0, 0, 0]).unwrap();
        assert_eq!(pc.unknown_items, vec![0x77]);
    }
}
