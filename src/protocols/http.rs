//! HTTP/1.x: device evidence only (the request's User-Agent for the client, the response's
//! Server for the server). No event; each direction's first head is read, then the parser is
//! done with that direction, and with the flow once both are read.

use medtap_parsers::http;

use super::{AppContext, AppParser, Direction};
use crate::fingerprint::extract;

/// Bytes of one direction held while waiting for the end of its first head.
pub const MAX_HEAD_BUF: usize = 8 * 1024;

#[derive(Default)]
pub struct HttpState {
    buf: [Vec<u8>; 2],
    done: [bool; 2],
}

impl HttpState {
    pub fn new() -> HttpState {
        HttpState::default()
    }

    fn read(&mut self, dir: Direction, cx: &mut AppContext<'_>) {
        let i = dir.index();
        let b = std::mem::take(&mut self.buf[i]);
        self.done[i] = true;
        if let Ok(h) = http::parse_head_lax(&b) {
            let (mac, ip) = cx.flow.sender(dir);
            cx.obs
                .evidence(cx.ts, mac, Some(ip), extract::from_http(&h));
        }
    }
}

impl AppParser for HttpState {
    fn on_data(&mut self, dir: Direction, data: &[u8], cx: &mut AppContext<'_>) {
        let i = dir.index();
        if self.done[i] || !cx.obs.enabled() {
            self.done[i] = true;
            return;
        }
        let take = data.len().min(MAX_HEAD_BUF - self.buf[i].len());
        self.buf[i].extend_from_slice(&data[..take]);
        let b = &self.buf[i];
        let ended = b.windows(4).any(|w| w == b"\r\n\r\n") || b.windows(2).any(|w| w == b"\n\n");
        if ended || b.len() >= MAX_HEAD_BUF {
            self.read(dir, cx);
        }
    }

    fn on_gap(&mut self, dir: Direction, _len: u64, cx: &mut AppContext<'_>) {
        if !self.done[dir.index()] && !self.buf[dir.index()].is_empty() {
            self.read(dir, cx);
        }
        self.done[dir.index()] = true;
    }

    fn on_close(&mut self, cx: &mut AppContext<'_>) {
        for dir in [Direction::ToServer, Direction::ToClient] {
            if !self.done[dir.index()] && !self.buf[dir.index()].is_empty() {
                self.read(dir, cx);
            }
        }
    }

    fn done(&self) -> bool {
        self.done[0] && self.done[1]
    }
}
