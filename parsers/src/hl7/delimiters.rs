//! HL7 v2 delimiters, read from the message itself: MSH-1 (field separator) and MSH-2 (encoding
//! characters), HL7 v2.5.1 section 2.5.4 ("Message delimiters") and 2.14.9.1/2.14.9.2.
//!
//! `MSH|^~\&|...`: byte 3 is the field separator, then MSH-2 runs up to the next field
//! separator: component `^`, repetition `~`, escape `\`, subcomponent `&`, and from v2.7 on an
//! optional truncation character `#`. Any printable, non-alphanumeric ASCII character may stand
//! in for each of them; nothing here assumes the recommended ones. FHS and BHS (batch headers)
//! carry the same two fields.

use hl7_parser::message::Separators;

/// The delimiters of one message. Characters absent from MSH-2 are `None` (the rules of
/// HL7 v2.5.1 2.5.4: a message without an escape character simply has no escape sequences).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delimiters {
    pub field: char,
    pub component: char,
    pub repetition: char,
    pub escape: Option<char>,
    pub subcomponent: Option<char>,
    /// v2.7 truncation character (MSH-2.5), usually `#`.
    pub truncation: Option<char>,
}

impl Default for Delimiters {
    /// The recommended set, `|^~\&`.
    fn default() -> Self {
        Delimiters {
            field: '|',
            component: '^',
            repetition: '~',
            escape: Some('\\'),
            subcomponent: Some('&'),
            truncation: None,
        }
    }
}

/// Why the delimiters of a header segment could not be read as the standard says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DelimiterError {
    /// The segment is shorter than `MSH` + separator.
    #[error("header segment too short to hold a field separator")]
    Truncated,
    /// MSH-1 is not printable non-alphanumeric ASCII.
    #[error("field separator is not a printable non-alphanumeric ASCII character")]
    BadFieldSeparator,
    /// MSH-2 has fewer than 2 or more than 5 characters.
    #[error("MSH-2 holds {0} encoding characters (2 to 5 expected)")]
    BadLength(usize),
    /// An encoding character is alphanumeric, non-printable, non-ASCII, or repeats another.
    #[error("MSH-2 encoding characters are not distinct printable non-alphanumeric ASCII")]
    BadCharacter,
}

fn usable(c: char) -> bool {
    c.is_ascii_graphic() && !c.is_ascii_alphanumeric()
}

impl Delimiters {
    /// Reads MSH-1 and MSH-2 from a header segment (`MSH`, `FHS` or `BHS` followed by the field
    /// separator), strictly: any departure from 2.5.4 is an error.
    #[must_use = "the delimiters decide how the message is split"]
    pub fn from_header(segment: &str) -> Result<Delimiters, DelimiterError> {
        // The recommended set, as nearly every message has it (what the reading below gives).
        if let Some(rest) = segment.as_bytes().get(3..) {
            if rest.starts_with(b"|^~\\&") && matches!(rest.get(5), None | Some(b'|')) {
                return Ok(Delimiters::default());
            }
        }
        let mut chars = segment.chars().skip(3);
        let field = chars.next().ok_or(DelimiterError::Truncated)?;
        if !usable(field) {
            return Err(DelimiterError::BadFieldSeparator);
        }
        let mut buf = ['\0'; 6];
        let mut n = 0;
        for (slot, c) in buf.iter_mut().zip(chars.take_while(|&c| c != field)) {
            *slot = c;
            n += 1;
        }
        let enc = &buf[..n];
        if !(2..=5).contains(&enc.len()) {
            return Err(DelimiterError::BadLength(enc.len()));
        }
        for (i, &c) in enc.iter().enumerate() {
            if !usable(c) || c == field || enc[..i].contains(&c) {
                return Err(DelimiterError::BadCharacter);
            }
        }
        Ok(Delimiters {
            field,
            component: enc[0],
            repetition: enc[1],
            escape: enc.get(2).copied(),
            subcomponent: enc.get(3).copied(),
            truncation: enc.get(4).copied(),
        })
    }

    /// Reads the delimiters laxly: the strict reading when it works; otherwise the field
    /// separator from the header when it is usable, with the recommended encoding characters
    /// that do not clash with it. Returns the error of the strict reading beside.
    pub fn from_header_lax(segment: &str) -> (Delimiters, Option<DelimiterError>) {
        match Delimiters::from_header(segment) {
            Ok(d) => (d, None),
            Err(e) => {
                let mut d = Delimiters::default();
                if let Some(f) = segment.chars().nth(3).filter(|&c| usable(c)) {
                    d.field = f;
                }
                if d.field != '|' {
                    // Keep the defaults that do not collide with the chosen field separator.
                    let clash = |c: char| c == d.field;
                    if clash(d.component) {
                        d.component = '|';
                    }
                    if clash(d.repetition) {
                        d.repetition = '|';
                    }
                    if d.escape.is_some_and(clash) {
                        d.escape = Some('|');
                    }
                    if d.subcomponent.is_some_and(clash) {
                        d.subcomponent = Some('|');
                    }
                }
                (d, Some(e))
            }
        }
    }

    /// The same delimiters in `hl7-parser`'s form. Absent characters become NUL, which never
    /// occurs in HL7 text, so that they never split anything.
    pub fn separators(&self) -> Separators {
        Separators {
            field: self.field,
            component: self.component,
            repetition: self.repetition,
            escape: self.escape.unwrap_or('\0'),
            subcomponent: self.subcomponent.unwrap_or('\0'),
            lenient_newlines: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_delimiters() {
        // pcaps/hl7/adt_oru_orm.pcap frame 6, the MSH of ADT00001.
        let d = Delimiters::from_header(
            "MSH|^~\\&|TEST_EHR_ADT|TESTHOSP|TEST_ENGINE|TESTHOSP|20240315101500||ADT^A01^ADT_A01|ADT00001|P|2.5.1",
        )
        .unwrap();
        assert_eq!(d, Delimiters::default());
    }

    #[test]
    fn other_delimiters_and_truncation() {
        let d = Delimiters::from_header("MSH#@!$%*#APP").unwrap();
        assert_eq!(
            d,
            Delimiters {
                field: '#',
                component: '@',
                repetition: '!',
                escape: Some('$'),
                subcomponent: Some('%'),
                truncation: Some('*'),
            }
        );
        // v2.7 truncation character.
        let d = Delimiters::from_header("MSH|^~\\&#|APP").unwrap();
        assert_eq!(d.truncation, Some('#'));
        // Only two encoding characters: no escape, no subcomponents.
        let d = Delimiters::from_header("MSH|^~|APP").unwrap();
        assert_eq!((d.escape, d.subcomponent), (None, None));
        // The header may end right after MSH-2.
        assert!(Delimiters::from_header("MSH|^~\\&").is_ok());
    }

    #[test]
    fn bad_delimiters() {
        assert_eq!(
            Delimiters::from_header("MSH"),
            Err(DelimiterError::Truncated)
        );
        assert_eq!(
            Delimiters::from_header("MSHA^~\\&A"),
            Err(DelimiterError::BadFieldSeparator)
        );
        assert_eq!(
            Delimiters::from_header("MSH||APP"),
            Err(DelimiterError::BadLength(0))
        );
        assert_eq!(
            Delimiters::from_header("MSH|^^\\&|"),
            Err(DelimiterError::BadCharacter)
        );
        assert_eq!(
            Delimiters::from_header("MSH|^~\\&#$|"),
            Err(DelimiterError::BadLength(6))
        );
        assert_eq!(
            Delimiters::from_header("MSH|^Ü\\&|"),
            Err(DelimiterError::BadCharacter)
        );
        let (d, e) = Delimiters::from_header_lax("MSH#^^#");
        assert_eq!(e, Some(DelimiterError::BadCharacter));
        assert_eq!(d.field, '#');
        assert_eq!(d.component, '^');
        let (d, e) = Delimiters::from_header_lax("MSH^x");
        assert!(e.is_some());
        assert_eq!((d.field, d.component), ('^', '|'));
    }
}
