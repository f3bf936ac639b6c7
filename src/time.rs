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

impl serde::Serialize for Ts {
    /// As its RFC 3339 text, written straight into the output (no intermediate string).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// What [`Ts::rfc3339`] writes for a time out of years 0 to 9999.
const OUT_OF_RANGE: &[u8; 31] = b"1970-01-01T00:00:00.000000+0000";

/// What [`Ts::rfc3339`] fills in: the separators and the UTC offset in place.
const TEMPLATE: &[u8; 31] = b"0000-00-00T00:00:00.000000+0000";

/// Writes the cached text up to the seconds (`head`, of [`LAST`]) and the microseconds over
/// [`TEMPLATE`] in `t`, two digits at a time.
#[inline]
fn fill_cached(t: &mut [u8; 31], head: &[u8; 19], micros: u32) {
    t[..19].copy_from_slice(head);
    t[20..22].copy_from_slice(&two_digits(micros / 10_000));
    t[22..24].copy_from_slice(&two_digits(micros / 100));
    t[24..26].copy_from_slice(&two_digits(micros));
}

thread_local! {
    /// The last second formatted on this thread ([`Ts::rfc3339`]) and its text up to the
    /// seconds: most timestamps written in a row fall in the same second.
    static LAST: std::cell::Cell<(i64, [u8; 19])> =
        const { std::cell::Cell::new((i64::MIN, [0; 19])) };
}

impl Ts {
    /// RFC 3339 with microseconds and an explicit UTC offset, as Suricata writes `timestamp`
    /// (`2018-01-29T19:23:42.000042+0000`; out of years 0 to 9999, the epoch).
    pub fn rfc3339(self) -> [u8; 31] {
        let secs = self.secs();
        let micros = self.0.rem_euclid(1_000_000) as u32;
        let (last_secs, head) = LAST.get();
        if last_secs == secs {
            let mut b = *TEMPLATE;
            fill_cached(&mut b, &head, micros);
            return b;
        }
        let b = Ts::rfc3339_uncached(secs, micros);
        if b != *OUT_OF_RANGE {
            let mut head = [0u8; 19];
            head.copy_from_slice(&b[..19]);
            LAST.set((secs, head));
        }
        b
    }

    /// Appends [`Ts::rfc3339`] to `b`. In the same second as the last one formatted on this
    /// thread (nearly always), the text is written in place: the template appended, the head
    /// and the microseconds written over it; not built in a stack buffer and copied (a load of
    /// bytes just stored piecewise, which waits for the stores).
    #[inline]
    pub fn push_rfc3339(self, b: &mut Vec<u8>) {
        let secs = self.secs();
        let (last_secs, head) = LAST.get();
        if last_secs != secs {
            b.extend_from_slice(&self.rfc3339());
            return;
        }
        let micros = self.0.rem_euclid(1_000_000) as u32;
        b.extend_from_slice(TEMPLATE);
        if let Some(t) = b.last_chunk_mut::<31>() {
            fill_cached(t, &head, micros);
        }
    }

    fn rfc3339_uncached(secs: i64, micros: u32) -> [u8; 31] {
        let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
        let sod = secs.rem_euclid(86_400) as u32;
        if !(0..=9999).contains(&y) {
            return *OUT_OF_RANGE;
        }
        let mut b = *TEMPLATE;
        let put = |b: &mut [u8], at: usize, width: usize, mut v: u32| {
            for i in (0..width).rev() {
                b[at + i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(&mut b, 0, 4, y as u32);
        put(&mut b, 5, 2, mo);
        put(&mut b, 8, 2, d);
        put(&mut b, 11, 2, sod / 3_600);
        put(&mut b, 14, 2, sod / 60 % 60);
        put(&mut b, 17, 2, sod % 60);
        put(&mut b, 20, 6, micros);
        b
    }
}

/// The last two decimal digits of `v` (`v % 100`, zero-padded), from a table.
#[inline]
pub(crate) fn two_digits(v: u32) -> [u8; 2] {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let i = 2 * (v % 100) as usize;
    [PAIRS[i], PAIRS[i + 1]]
}

impl fmt::Display for Ts {
    /// [`Ts::rfc3339`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.rfc3339();
        // ok: every byte is an ASCII digit or comes from the ASCII template
        f.write_str(std::str::from_utf8(&b).unwrap_or("1970-01-01T00:00:00.000000+0000"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_agree_with_the_time_crate() {
        for secs in [
            0i64,
            951_782_400,
            1_517_253_822,
            4_102_444_800,
            1_709_164_800,
            86_399,
            253_402_300_799,
        ] {
            let t = ::time::OffsetDateTime::from_unix_timestamp(secs).unwrap();
            let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
            assert_eq!(
                (y, m, d),
                (i64::from(t.year()), t.month() as u32, u32::from(t.day())),
                "{secs}"
            );
        }
    }

    #[test]
    fn cached_seconds_format_as_fresh_ones() {
        let mut t = 1_517_253_822_000_000i64 - 3_000_000;
        for step in [1, 7, 999_999, 1_000_000, 86_400_000_000, 13, -5_000_000, 0] {
            for _ in 0..50 {
                t += step;
                let secs = Ts(t).secs();
                let micros = t.rem_euclid(1_000_000) as u32;
                assert_eq!(Ts(t).rfc3339(), Ts::rfc3339_uncached(secs, micros), "{t}");
            }
        }
        for t in [i64::MIN, -1, 0, 253_402_300_800_000_000, i64::MAX] {
            let secs = Ts(t).secs();
            let micros = t.rem_euclid(1_000_000) as u32;
            assert_eq!(Ts(t).rfc3339(), Ts::rfc3339_uncached(secs, micros), "{t}");
        }
    }

    #[test]
    fn pushed_as_formatted() {
        let mut t = 1_517_253_822_000_000i64 - 3_000_000;
        let (mut got, mut want) = (b"x".to_vec(), b"x".to_vec());
        for step in [1, 7, 999_999, 1_000_000, 86_400_000_000, 13, -5_000_000, 0] {
            for _ in 0..50 {
                t += step;
                Ts(t).push_rfc3339(&mut got);
                want.extend_from_slice(&Ts::rfc3339_uncached(
                    Ts(t).secs(),
                    t.rem_euclid(1_000_000) as u32,
                ));
            }
        }
        for t in [i64::MIN, -1, 0, 253_402_300_800_000_000, i64::MAX, i64::MAX] {
            Ts(t).push_rfc3339(&mut got);
            want.extend_from_slice(&Ts::rfc3339_uncached(
                Ts(t).secs(),
                t.rem_euclid(1_000_000) as u32,
            ));
        }
        assert_eq!(
            String::from_utf8(got).unwrap(),
            String::from_utf8(want).unwrap()
        );
    }

    #[test]
    fn formats_rfc3339() {
        let t = Ts::from_timeval(1_517_253_822, 42);
        assert_eq!(t.to_string(), "2018-01-29T19:23:42.000042+0000");
    }
}
