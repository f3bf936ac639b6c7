//! Line splitting for line-oriented protocols (FTP control, HTTP heads): bytes of one
//! direction in, complete lines out, with a cap on what a line may hold.
//!
//! A line longer than [`MAX_LINE`] is cut: its first [`MAX_LINE`] bytes are handed over once
//! (marked cut) and the rest skipped up to the next `\n`. Memory per direction: at most
//! [`MAX_LINE`] bytes.

/// Bytes kept of one line (FTP commands and HTTP header lines are far shorter).
pub const MAX_LINE: usize = 2048;

/// One direction's partial line.
#[derive(Default)]
pub struct Lines {
    buf: Vec<u8>,
    /// Skipping the rest of an over-long line.
    skipping: bool,
}

impl Lines {
    /// Feed bytes; `f` gets each complete line (without its `\n`) and whether it was cut.
    pub fn feed(&mut self, mut data: &[u8], mut f: impl FnMut(&[u8], bool)) {
        while !data.is_empty() {
            let nl = memchr::memchr(b'\n', data);
            let (part, rest, ended) = match nl {
                Some(i) => (&data[..i], &data[i + 1..], true),
                None => (data, &[][..], false),
            };
            if self.skipping {
                if ended {
                    self.skipping = false;
                }
            } else {
                let room = MAX_LINE - self.buf.len();
                if part.len() > room {
                    self.buf.extend_from_slice(&part[..room]);
                    f(&self.buf, true);
                    self.buf.clear();
                    self.skipping = !ended;
                } else if ended {
                    if self.buf.is_empty() {
                        f(part, false);
                    } else {
                        self.buf.extend_from_slice(part);
                        f(&self.buf, false);
                        self.buf.clear();
                    }
                } else {
                    self.buf.extend_from_slice(part);
                }
            }
            data = rest;
        }
    }

    /// Lost bytes: the partial line is dropped and the next line boundary awaited.
    pub fn gap(&mut self) {
        self.buf.clear();
        self.skipping = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_and_cap() {
        let mut l = Lines::default();
        let mut got = Vec::new();
        for chunk in [&b"USER a"[..], b"\r\nPA", b"SS b\r\nQUIT\r\n"] {
            l.feed(chunk, |line, cut| got.push((line.to_vec(), cut)));
        }
        assert_eq!(got.len(), 3);
        assert_eq!(got[1].0, b"PASS b\r");
        let mut got = Vec::new();
        let long = vec![b'x'; MAX_LINE + 10];
        l.feed(&long, |line, cut| got.push((line.len(), cut)));
        l.feed(b"yy\nok\n", |line, cut| got.push((line.len(), cut)));
        assert_eq!(got, vec![(MAX_LINE, true), (2, false)]);
        l.gap();
        let mut got = Vec::new();
        l.feed(b"tail\nnext\n", |line, _| got.push(line.to_vec()));
        assert_eq!(got, vec![b"next".to_vec()]);
    }
}
