//! Packet time. Everything that ages (flows, baselines, windows) runs on the capture's clock,
//! never the wall clock, so a replay and a live capture of the same traffic agree.

use std::fmt;

/// Microseconds since the Unix epoch, as read from the capture record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Ts(pub i64);

impl Ts {
    pub const ZERO: Ts = Ts(0);

    pub fn from_timeval(sec: i64, usec: i64) -> Ts {
        Ts(sec.saturating_mul(1_000_000).saturating_add(usec))
    }

    pub fn secs(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    pub fn saturating_add_secs(self, s: u64) -> Ts {
        Ts(self.0.saturating_add((s as i64).saturating_mul(1_000_000)))
    }

    /// Seconds from `earlier` to `self` as a float (0 if negative).
    pub fn secs_since(self, earlier: Ts) -> f64 {
        (self.0.saturating_sub(earlier.0)).max(0) as f64 / 1e6
    }
}

impl fmt::Display for Ts {
    /// RFC 3339 with microseconds and an explicit UTC offset, as Suricata writes `timestamp`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.secs();
        let micros = self.0.rem_euclid(1_000_000);
        match ::time::OffsetDateTime::from_unix_timestamp(secs) {
            Ok(t) => write!(
                f,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}+0000",
                t.year(),
                t.month() as u8,
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                micros
            ),
            Err(_) => write!(f, "1970-01-01T00:00:00.000000+0000"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        let t = Ts::from_timeval(1_517_253_822, 42);
        assert_eq!(t.to_string(), "2018-01-29T19:23:42.000042+0000");
    }
}
