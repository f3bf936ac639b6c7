//! Packets from libpcap (the `pcap` crate): pcap and pcapng files, and the files of folders.
//! (Replay reads most plain pcap files with [`crate::pcapfile`] instead; see [`chunked`].)
//!
//! A path given on the command line must be a capture (else exit 2 with a clear message);
//! inside a folder, files are taken recursively in a stable (sorted) order and the ones that do
//! not start with a pcap or pcapng magic number are skipped with a one-line note. A truncated or
//! corrupt file is read as far as it goes; the damage is counted and reported and the next file
//! still runs.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The first four bytes of every capture format libpcap reads.
const MAGICS: [[u8; 4]; 9] = [
    [0xd4, 0xc3, 0xb2, 0xa1], // pcap, microseconds, little-endian
    [0xa1, 0xb2, 0xc3, 0xd4], // pcap, microseconds, big-endian
    [0x4d, 0x3c, 0xb2, 0xa1], // pcap, nanoseconds, little-endian
    [0xa1, 0xb2, 0x3c, 0x4d], // pcap, nanoseconds, big-endian
    [0x34, 0xcd, 0xb2, 0xa1], // Kuznetsov's modified pcap, little-endian
    [0xa1, 0xb2, 0xcd, 0x34], // Kuznetsov's modified pcap, big-endian
    [0x0a, 0x0d, 0x0d, 0x0a], // pcapng section header block
    [0x3c, 0x4d, 0xb2, 0xa1], // (byte-swapped nanosecond variants seen in the wild)
    [0xa1, 0xb2, 0x4d, 0x3c],
];

/// Whether the file starts with a capture magic number.
pub fn is_capture(path: &Path) -> std::io::Result<bool> {
    let mut f = File::open(path)?;
    let mut magic = [0u8; 4];
    match f.read_exact(&mut magic) {
        Ok(()) => Ok(MAGICS.contains(&magic)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// The capture files to replay, in order, and the notes about files skipped.
#[derive(Debug, Default)]
pub struct FileList {
    pub files: Vec<PathBuf>,
    pub skipped: Vec<(PathBuf, String)>,
    pub total_bytes: u64,
}

/// Expand command-line paths: files must be captures; folders are walked recursively in sorted
/// order, skipping (with a note) what is not a capture.
pub fn collect(paths: &[PathBuf]) -> Result<FileList> {
    let mut list = FileList::default();
    for p in paths {
        let meta = std::fs::metadata(p).with_context(|| format!("{}: cannot read", p.display()))?;
        if meta.is_dir() {
            walk(p, &mut list)?;
        } else {
            if !is_capture(p).with_context(|| format!("{}: cannot read", p.display()))? {
                bail!(
                    "{}: not a pcap or pcapng capture (unknown magic number)",
                    p.display()
                );
            }
            list.total_bytes += meta.len();
            list.files.push(p.clone());
        }
    }
    Ok(list)
}

fn walk(dir: &Path, list: &mut FileList) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot read folder", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        let Ok(meta) = std::fs::metadata(&p) else {
            list.skipped.push((p, "cannot read".into()));
            continue;
        };
        if meta.is_dir() {
            walk(&p, list)?;
        } else {
            match is_capture(&p) {
                Ok(true) => {
                    list.total_bytes += meta.len();
                    list.files.push(p);
                }
                Ok(false) => list
                    .skipped
                    .push((p, "not a capture (unknown magic number)".into())),
                Err(e) => list.skipped.push((p, format!("cannot read: {e}"))),
            }
        }
    }
    Ok(())
}

/// One packet as read from libpcap.
pub struct RawPacket<'a> {
    /// The link type of the packet's interface (a pcapng file may have several).
    pub linktype: i32,
    pub ts_sec: i64,
    pub ts_usec: i64,
    /// Original length on the wire.
    pub wire_len: u32,
    pub data: &'a [u8],
}

/// How reading one file ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileEnd {
    Complete,
    /// Stopped at a record that could not be read.
    Damaged {
        kind: &'static str,
        message: String,
    },
}

/// Ask for the cache line `bytes` start in, without waiting for it (nothing on other targets):
/// how a worker fetches the headers of the captured packets it will read next (see
/// `pipeline::touch_ahead`). Here with the rest of the capture's `unsafe`.
#[inline(always)]
pub(crate) fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    // SAFETY: a prefetch is a hint: it reads nothing the program sees and cannot fault, whatever
    // the address (here one inside a live slice, or its end).
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(bytes.as_ptr().cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// `path` as [`crate::pcapfile`] reads it, when that reader takes the file, and there is no
/// `--bpf`; `None`: read it with [`FileReader`] (which also words any error opening it).
///
/// libpcap opens the file, on an unbuffered stream, and reads its header: it says whether it is
/// a capture at all, its link type (a DLT_ value) and its snapshot length (adjusted). The
/// chunked reader takes a file of a link type medtap decodes whose header
/// [`crate::pcapfile::takes`] (pcap, host byte order, version 2.4), and reads its records on a
/// duplicate of the stream's descriptor.
#[allow(unsafe_code)]
pub fn chunked(
    path: &Path,
    bpf: Option<&str>,
) -> Option<(crate::pcapfile::Format, crate::pcapfile::Reader<File>)> {
    use std::io::{Seek, SeekFrom};
    use std::os::fd::FromRawFd;
    use std::os::unix::fs::FileExt;
    if bpf.is_some() {
        return None;
    }
    let (cap, _buf, fd) = open_offline_buffered(path, 0).ok()?;
    let linktype = cap.get_datalink().0;
    if !crate::decode::linktype::supported(linktype) {
        return None;
    }
    // SAFETY: the pointer is the open handle `cap` holds.
    let snapshot = unsafe { ffi::pcap_snapshot(cap.as_ptr().cast()) };
    // SAFETY: `fd` is the descriptor of the stream `cap` holds, open until `cap` is dropped;
    // the duplicate is a new descriptor, owned by the `File` from here on.
    let mut f = unsafe {
        let dup = libc::dup(fd);
        if dup < 0 {
            return None;
        }
        File::from_raw_fd(dup)
    };
    drop(cap);
    let mut header = [0u8; crate::pcapfile::FILE_HEADER];
    f.read_exact_at(&mut header, 0).ok()?;
    let nsec = crate::pcapfile::takes(&header)?;
    f.seek(SeekFrom::Start(crate::pcapfile::FILE_HEADER as u64))
        .ok()?;
    let format = crate::pcapfile::Format {
        nsec,
        linktype,
        snapshot: u32::try_from(snapshot).ok()?,
    };
    Some((format, crate::pcapfile::Reader::new(f, format)))
}

/// Size of the stdio buffer libpcap reads a capture file through. glibc's default is the file
/// system block (4 KiB): one `read` system call per 4 KiB, whose fixed cost (page-cache lookup,
/// atime, locking) was about a quarter of libpcap's reading time. Measured on bench.pcap (967 MB)
/// with `pcap_next_ex` alone: 0.34 s CPU with 4 KiB, 0.25 s with 64 KiB to 256 KiB, 0.26-0.28 s
/// with 1 MiB (the buffer no longer stays in the core's cache).
pub const FILE_BUFFER_BYTES: usize = 128 * 1024;

/// An open capture file.
pub struct FileReader {
    // Declared before `_buf`: the handle (and its `FILE`) is closed before the buffer is freed.
    cap: pcap::Capture<pcap::Offline>,
    pub linktype: i32,
    path: PathBuf,
    bpf: Option<String>,
    /// The stdio buffer of the handle's `FILE` (see [`FILE_BUFFER_BYTES`]).
    _buf: Box<[u8]>,
}

/// libpcap's `pcap_fopen_offline_with_tstamp_precision` (libpcap >= 1.5; the `pcap` crate links
/// libpcap): a savefile handle on a stream opened by the caller, so that the stream's buffer can
/// be set before libpcap reads from it. The handle owns the stream (`pcap_close` closes it).
mod ffi {
    #![allow(unsafe_code)]
    extern "C" {
        pub fn pcap_fopen_offline_with_tstamp_precision(
            fp: *mut libc::FILE,
            precision: libc::c_uint,
            errbuf: *mut libc::c_char,
        ) -> *mut libc::c_void;
        /// `__fsetlocking` of glibc's (and musl's) stdio_ext.h.
        pub fn __fsetlocking(fp: *mut libc::FILE, kind: libc::c_int) -> libc::c_int;
        /// The snapshot length of a savefile handle, as libpcap adjusted the file's.
        pub fn pcap_snapshot(p: *mut libc::c_void) -> libc::c_int;
    }
    /// `FSETLOCKING_BYCALLER` of stdio_ext.h.
    pub const FSETLOCKING_BYCALLER: libc::c_int = 2;
}

/// `PCAP_ERRBUF_SIZE` of pcap.h.
const PCAP_ERRBUF_SIZE: usize = 256;
/// `PCAP_TSTAMP_PRECISION_MICRO` of pcap.h.
const PCAP_TSTAMP_PRECISION_MICRO: libc::c_uint = 0;

/// The pointer type `pcap::Capture` wraps, which the crate does not name publicly: taken from
/// the signature of its `as_ptr`.
fn handle_ptr<P>(
    _as_ptr: fn(&pcap::Capture<pcap::Offline>) -> *mut P,
    p: *mut libc::c_void,
) -> *mut P {
    p.cast()
}

/// Open `path` for libpcap with a [`FILE_BUFFER_BYTES`] stdio buffer, as `pcap_open_offline`
/// does (`fopen` then `pcap_fopen_offline`) but with `setvbuf` in between. Errors read as
/// libpcap's own.
#[allow(unsafe_code)]
fn open_offline(path: &Path) -> Result<(pcap::Capture<pcap::Offline>, Box<[u8]>), pcap::Error> {
    open_offline_buffered(path, FILE_BUFFER_BYTES).map(|(cap, buf, _)| (cap, buf))
}

/// An open savefile handle, its stdio buffer (kept until the handle is closed) and the stream's
/// file descriptor.
type Opened = (pcap::Capture<pcap::Offline>, Box<[u8]>, libc::c_int);

/// [`open_offline`] with a stdio buffer of `buffer` bytes (0: unbuffered, so that libpcap reads
/// the file header and nothing more); also gives the stream's file descriptor.
#[allow(unsafe_code)]
fn open_offline_buffered(path: &Path, buffer: usize) -> Result<Opened, pcap::Error> {
    use std::os::unix::ffi::OsStrExt;
    let cpath = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| pcap::Error::InvalidInputString)?;
    // SAFETY: both arguments are NUL-terminated strings that outlive the call.
    let fp = unsafe { libc::fopen(cpath.as_ptr(), c"rb".as_ptr()) };
    if fp.is_null() {
        let e = std::io::Error::last_os_error();
        let msg = e.to_string();
        // As libpcap words it: "<path>: <strerror>".
        let msg = msg.split(" (os error").next().unwrap_or(&msg);
        return Err(pcap::Error::PcapError(format!("{}: {msg}", path.display())));
    }
    let mut buf = vec![0u8; buffer].into_boxed_slice();
    // SAFETY: `fp` is a stream just opened, before any I/O on it (as setvbuf requires); `buf`
    // is returned with the handle and the caller keeps it until after the handle is closed.
    // A failure only leaves the default buffer.
    unsafe {
        if buffer == 0 {
            libc::setvbuf(fp, std::ptr::null_mut(), libc::_IONBF, 0);
        } else {
            libc::setvbuf(fp, buf.as_mut_ptr().cast(), libc::_IOFBF, buf.len());
        }
    }
    // SAFETY: `fp` is an open stream.
    let fd = unsafe { libc::fileno(fp) };
    // SAFETY: `fp` is open and not yet shared. Only the thread that reads the handle touches the
    // stream, so stdio need not take its lock around each of libpcap's two `fread`s a packet.
    unsafe {
        ffi::__fsetlocking(fp, ffi::FSETLOCKING_BYCALLER);
    }
    let mut errbuf = [0 as libc::c_char; PCAP_ERRBUF_SIZE];
    // SAFETY: `fp` is an open stream whose ownership passes to the handle on success;
    // `errbuf` has PCAP_ERRBUF_SIZE bytes as libpcap requires.
    let p = unsafe {
        ffi::pcap_fopen_offline_with_tstamp_precision(
            fp,
            PCAP_TSTAMP_PRECISION_MICRO,
            errbuf.as_mut_ptr(),
        )
    };
    let Some(handle) = std::ptr::NonNull::new(handle_ptr(pcap::Capture::as_ptr, p)) else {
        // SAFETY: on failure libpcap did not take the stream; it is closed once, here. libpcap
        // wrote a NUL-terminated message into `errbuf` (zeroed beforehand, so terminated anyway).
        let msg = unsafe {
            libc::fclose(fp);
            std::ffi::CStr::from_ptr(errbuf.as_ptr())
        };
        return Err(pcap::Error::PcapError(msg.to_string_lossy().into_owned()));
    };
    Ok((pcap::Capture::from(handle), buf, fd))
}

impl FileReader {
    pub fn open(path: &Path, bpf: Option<&str>) -> Result<FileReader> {
        let (mut cap, buf) =
            open_offline(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        if let Some(expr) = bpf {
            cap.filter(expr, true)
                .map_err(|e| anyhow::anyhow!("--bpf '{expr}': {e}"))?;
        }
        let linktype = cap.get_datalink().0;
        Ok(FileReader {
            cap,
            linktype,
            path: path.to_path_buf(),
            bpf: bpf.map(str::to_string),
            _buf: buf,
        })
    }

    /// Read packets until the end of the file or the first unreadable record. One
    /// `pcap_loop` over the whole file (libpcap calls `f` for each packet) rather than a
    /// `pcap_next_ex` call per packet.
    ///
    /// A pcapng file whose interfaces have different link types, which libpcap stops reading
    /// at the first interface unlike the first, is read on from there by [`crate::pcapng`]
    /// (each packet with its own interface's link type; `--bpf` compiled for each link type).
    pub fn for_each(&mut self, mut f: impl FnMut(RawPacket<'_>)) -> FileEnd {
        let linktype = self.linktype;
        let mut delivered: u64 = 0;
        let r = self.cap.for_each(None, |p| {
            delivered += 1;
            f(RawPacket {
                linktype,
                ts_sec: p.header.ts.tv_sec,
                ts_usec: p.header.ts.tv_usec,
                wire_len: p.header.len,
                data: p.data,
            })
        });
        match r {
            Ok(()) => FileEnd::Complete,
            Err(e) => {
                // libpcap's own words, without the crate's "libpcap error: " (the chunked
                // reader words the same damage the same way).
                let message = match e {
                    pcap::Error::PcapError(m) => m,
                    e => e.to_string(),
                };
                if message.contains("different from the type of the first interface") {
                    return self.mixed_pcapng(delivered, f);
                }
                let kind = if message.contains("truncated") {
                    "truncated"
                } else {
                    "corrupt"
                };
                FileEnd::Damaged { kind, message }
            }
        }
    }

    /// Read the file with [`crate::pcapng::Reader`] (the `pcap-parser` crate's pcapng reader),
    /// skipping the `skip` packets libpcap already gave.
    fn mixed_pcapng(&self, skip: u64, mut f: impl FnMut(RawPacket<'_>)) -> FileEnd {
        let file = match File::open(&self.path) {
            Ok(x) => x,
            Err(e) => {
                return FileEnd::Damaged {
                    kind: "corrupt",
                    message: format!("{}: {e}", self.path.display()),
                }
            }
        };
        let mut filters: Vec<(i32, Option<pcap::BpfProgram>)> = Vec::new();
        let mut bpf_error = None;
        let mut seen: u64 = 0;
        // No BufReader: the crate's reader keeps its own buffer.
        let mut r = crate::pcapng::Reader::new(file);
        let end = r.for_each(|p| {
            seen += 1;
            if seen <= skip {
                return;
            }
            if let Some(expr) = &self.bpf {
                let at = match filters.iter().position(|(lt, _)| *lt == p.linktype) {
                    Some(at) => at,
                    None => {
                        let prog = pcap::Capture::dead(pcap::Linktype(p.linktype))
                            .and_then(|c| c.compile(expr, true));
                        let prog = match prog {
                            Ok(x) => Some(x),
                            Err(e) => {
                                bpf_error.get_or_insert_with(|| {
                                    format!(
                                        "--bpf '{expr}' does not compile for link type {}: {e}; \
                                         its packets are skipped",
                                        p.linktype
                                    )
                                });
                                None
                            }
                        };
                        filters.push((p.linktype, prog));
                        filters.len() - 1
                    }
                };
                if !filters[at].1.as_ref().is_some_and(|b| b.filter(p.data)) {
                    return;
                }
            }
            f(RawPacket {
                linktype: p.linktype,
                ts_sec: p.ts_sec,
                ts_usec: p.ts_usec,
                wire_len: p.wire_len,
                data: p.data,
            })
        });
        match (end, bpf_error) {
            (Err(d), _) => FileEnd::Damaged {
                kind: d.kind,
                message: d.message,
            },
            (Ok(()), Some(message)) => FileEnd::Damaged {
                kind: "corrupt",
                message,
            },
            (Ok(()), None) => FileEnd::Complete,
        }
    }
}

/// A pcap-savefile test helper: write packets as a classic pcap file.
pub fn write_pcap(
    path: &Path,
    linktype: u32,
    packets: &[(i64, i64, &[u8])],
) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(File::create(path)?);
    f.write_all(&0xa1b2c3d4u32.to_le_bytes())?;
    f.write_all(&2u16.to_le_bytes())?;
    f.write_all(&4u16.to_le_bytes())?;
    f.write_all(&0i32.to_le_bytes())?;
    f.write_all(&0u32.to_le_bytes())?;
    f.write_all(&65535u32.to_le_bytes())?;
    f.write_all(&linktype.to_le_bytes())?;
    for (s, us, data) in packets {
        f.write_all(&(*s as u32).to_le_bytes())?;
        f.write_all(&(*us as u32).to_le_bytes())?;
        f.write_all(&(data.len() as u32).to_le_bytes())?;
        f.write_all(&(data.len() as u32).to_le_bytes())?;
        f.write_all(data)?;
    }
    f.flush()
}

/// Settings of one live interface.
#[derive(Debug, Clone)]
pub struct LiveSettings {
    pub interface: String,
    pub snaplen: i32,
    pub buffer_bytes: i32,
    pub promisc: bool,
    pub bpf: Option<String>,
    /// Immediate mode (the default): each packet is handed over as it arrives. On Linux
    /// libpcap then uses a TPACKET_V2 ring of fixed slots sized by the snaplen (capped by the
    /// interface's largest frame), so a 64 MiB buffer on a 64 KiB-MTU or offloading interface
    /// holds only about a thousand packets. Off: a TPACKET_V3 ring of packed blocks, handed
    /// over when full or after the read timeout ([`LIVE_READ_TIMEOUT_MS`]).
    pub immediate: bool,
}

/// What one read from a live interface gave.
pub enum LiveRead {
    /// Zero or more packets were handed to the callback.
    Packets,
    /// The read timeout passed with nothing to read.
    Idle,
    /// The capture failed (interface gone, permission lost).
    Failed(String),
}

/// Kernel and interface drop counters as libpcap reports them (32-bit, wrapping).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveStats {
    pub received: u32,
    pub dropped: u32,
    pub if_dropped: u32,
}

impl LiveStats {
    /// Packets counted between `earlier` and `self`, each counter wrapping at 2^32.
    pub fn since(&self, earlier: &LiveStats) -> (u64, u64, u64) {
        (
            u64::from(self.received.wrapping_sub(earlier.received)),
            u64::from(self.dropped.wrapping_sub(earlier.dropped)),
            u64::from(self.if_dropped.wrapping_sub(earlier.if_dropped)),
        )
    }
}

/// A live capture handle: immediate mode, a short read timeout so the caller can do periodic
/// work, promiscuous unless told otherwise.
pub struct LiveSource {
    cap: pcap::Capture<pcap::Active>,
    pub linktype: i32,
}

/// Read timeout of a live handle: the longest a capture thread waits before its periodic work.
pub const LIVE_READ_TIMEOUT_MS: i32 = 100;

/// Pause of an idle capture thread between reads of its non-blocking handle.
pub const IDLE_SLEEP_MS: u64 = 2;

impl LiveSource {
    pub fn open(s: &LiveSettings) -> Result<LiveSource> {
        let cap = pcap::Capture::from_device(s.interface.as_str())
            .map_err(|e| anyhow::anyhow!("--interface {}: {e}", s.interface))?
            .immediate_mode(s.immediate)
            .promisc(s.promisc)
            .snaplen(s.snaplen)
            .buffer_size(s.buffer_bytes)
            .timeout(LIVE_READ_TIMEOUT_MS)
            .precision(pcap::Precision::Micro)
            .open()
            .map_err(|e| anyhow::anyhow!("--interface {}: {e}", s.interface))?;
        // Non-blocking: on Linux a blocking read can wait forever on a quiet interface whatever
        // the timeout, and the capture thread must notice a stop request.
        let mut cap = cap
            .setnonblock()
            .map_err(|e| anyhow::anyhow!("--interface {}: {e}", s.interface))?;
        if let Some(expr) = &s.bpf {
            cap.filter(expr, true)
                .map_err(|e| anyhow::anyhow!("--bpf '{expr}': {e}"))?;
        }
        let linktype = cap.get_datalink().0;
        Ok(LiveSource { cap, linktype })
    }

    /// Read what is there (up to `max` packets), or pause briefly when there is nothing.
    pub fn read(&mut self, max: usize, mut f: impl FnMut(RawPacket<'_>)) -> LiveRead {
        let linktype = self.linktype;
        for i in 0..max {
            match self.cap.next_packet() {
                Ok(p) => f(RawPacket {
                    linktype,
                    ts_sec: p.header.ts.tv_sec,
                    ts_usec: p.header.ts.tv_usec,
                    wire_len: p.header.len,
                    data: p.data,
                }),
                Err(pcap::Error::TimeoutExpired) => {
                    return if i == 0 {
                        // Nothing to read: wait a little (the kernel buffer holds what comes).
                        std::thread::sleep(std::time::Duration::from_millis(IDLE_SLEEP_MS));
                        LiveRead::Idle
                    } else {
                        LiveRead::Packets
                    };
                }
                Err(e) => return LiveRead::Failed(e.to_string()),
            }
        }
        LiveRead::Packets
    }

    pub fn stats(&mut self) -> Option<LiveStats> {
        self.cap.stats().ok().map(|s| LiveStats {
            received: s.received,
            dropped: s.dropped,
            if_dropped: s.if_dropped,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Linktype, seconds, microseconds, wire length and bytes of every packet, and the end.
    type Read = (Vec<(i32, i64, i64, u32, Vec<u8>)>, FileEnd);

    fn by_libpcap(path: &Path) -> Read {
        let mut r = FileReader::open(path, None).unwrap();
        let mut out = Vec::new();
        let end = r.for_each(|p| {
            out.push((p.linktype, p.ts_sec, p.ts_usec, p.wire_len, p.data.to_vec()));
        });
        (out, end)
    }

    fn by_chunks(path: &Path, chunk: usize) -> Option<Read> {
        let (format, mut r) = chunked(path, None)?;
        let mut out = Vec::new();
        let mut recs = Vec::new();
        let mut buf = vec![0u8; chunk];
        loop {
            let fill = r.fill(&mut buf, &mut recs);
            for x in &recs {
                let data = buf[x.off as usize..][..x.caplen as usize].to_vec();
                out.push((format.linktype, x.ts_sec, x.ts_usec, x.wire_len, data));
            }
            match fill {
                crate::pcapfile::Fill::More => {}
                crate::pcapfile::Fill::End(Ok(())) => return Some((out, FileEnd::Complete)),
                crate::pcapfile::Fill::End(Err(d)) => {
                    let (kind, message) = (d.kind, d.message);
                    return Some((out, FileEnd::Damaged { kind, message }));
                }
            }
        }
    }

    fn captures(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.path());
        for e in entries {
            let p = e.path();
            if p.is_dir() {
                captures(&p, out);
            } else if is_capture(&p).unwrap_or(false) {
                out.push(p);
            }
        }
    }

    /// The chunked reader gives what libpcap gives, packet for packet and to the same end, on
    /// every capture it takes in pcaps/ (in chunks small enough to cut records) and on copies
    /// of them damaged every way a record can be: cut short anywhere, a captured length past
    /// libpcap's maximum, past the snapshot length or anything at all.
    #[test]
    fn chunked_reads_what_libpcap_reads() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps");
        let mut files = Vec::new();
        captures(&root, &mut files);
        let dir = tempfile::tempdir().unwrap();
        let mut taken = 0;
        let mut damaged = 0;
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rand = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for path in &files {
            let Some(fast) = by_chunks(path, 4096) else {
                continue;
            };
            taken += 1;
            assert!(fast == by_libpcap(path), "{}", path.display());
            let bytes = std::fs::read(path).unwrap();
            // Record starts, from libpcap's packet lengths.
            let mut starts = vec![crate::pcapfile::FILE_HEADER];
            for (.., data) in &fast.0 {
                let last = *starts.last().unwrap();
                starts.push(last + 16 + data.len());
            }
            starts.pop();
            if bytes.len() > 50_000 || starts.is_empty() {
                continue;
            }
            for k in 0..12 {
                let mut b = bytes.clone();
                let at = starts[rand() as usize % starts.len()];
                match k % 4 {
                    0 => {
                        b.truncate(crate::pcapfile::FILE_HEADER + rand() as usize % (b.len() - 24))
                    }
                    1 => b[at + 8..at + 12].copy_from_slice(&(262_145 + k as u32).to_ne_bytes()),
                    2 => b[16..20].copy_from_slice(&(1 + rand() as u32 % 200).to_ne_bytes()),
                    _ => b[at + 8..at + 12].copy_from_slice(&(rand() as u32).to_ne_bytes()),
                }
                let copy = dir.path().join(format!("{damaged}.pcap"));
                std::fs::write(&copy, &b).unwrap();
                damaged += 1;
                let want = by_libpcap(&copy);
                for chunk in [64, 1000, 20_000] {
                    let fast = by_chunks(&copy, chunk).unwrap();
                    assert!(
                        fast == want,
                        "{} damaged ({k}), chunk {chunk}: {:?} vs {:?}",
                        path.display(),
                        fast.1,
                        want.1
                    );
                }
            }
        }
        assert!(
            taken >= 60 && damaged >= 300,
            "{taken} files, {damaged} damaged copies"
        );
    }

    #[test]
    fn live_drop_counters_wrap() {
        let a = LiveStats {
            received: u32::MAX - 5,
            dropped: u32::MAX,
            if_dropped: 7,
        };
        let b = LiveStats {
            received: 10,
            dropped: 3,
            if_dropped: 7,
        };
        assert_eq!(b.since(&a), (16, 4, 0));
    }
}
