//! Timestamps written into JSON exactly as chrono's own `Serialize` writes them (RFC 3339, UTC
//! as `Z`, fractional seconds in 0, 3, 6 or 9 digits as needed), without `core::fmt`.
//!
//! chrono's impl hands a `Display` to `collect_str`, so serde_json formats it one escaped
//! `write_char` at a time: about 2,400 instructions per timestamp, 15% of the instructions of a
//! page of chat messages (issue 13, `benches/load/page_callgrind.sh`). Here the 20 to 30 bytes
//! are written into a stack buffer and serialised as one string. Years outside 0–9999 and leap
//! seconds, which PostgreSQL never gives us, are left to chrono.
//!
//! Use on a field: `#[serde(serialize_with = "crate::domain::rfc3339::utc")]` (or `utc_option`).

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Serialize, Serializer};

/// `YYYY-MM-DDTHH:MM:SS.fffffffffZ`: the longest form written here.
const MAX_LEN: usize = 30;

pub fn utc<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; MAX_LEN];
    match write(at, &mut buf) {
        // Only ASCII digits and separators were written.
        Some(len) => serializer.serialize_str(std::str::from_utf8(&buf[..len]).unwrap_or_default()),
        None => at.serialize(serializer),
    }
}

pub fn utc_option<S: Serializer>(
    at: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => utc(at, serializer),
        None => serializer.serialize_none(),
    }
}

/// Writes `at` into `buf`; `None` for what chrono writes differently (see the header).
fn write(at: &DateTime<Utc>, buf: &mut [u8; MAX_LEN]) -> Option<usize> {
    let naive = at.naive_utc();
    let year = naive.year();
    let nano = naive.nanosecond();
    if !(0..=9999).contains(&year) || nano >= 1_000_000_000 {
        return None;
    }
    let year = year as u32;
    digits(&mut buf[0..4], year);
    buf[4] = b'-';
    digits(&mut buf[5..7], naive.month());
    buf[7] = b'-';
    digits(&mut buf[8..10], naive.day());
    buf[10] = b'T';
    digits(&mut buf[11..13], naive.hour());
    buf[13] = b':';
    digits(&mut buf[14..16], naive.minute());
    buf[16] = b':';
    digits(&mut buf[17..19], naive.second());
    let mut len = 19;
    let (fraction, width) = if nano == 0 {
        (0, 0)
    } else if nano.is_multiple_of(1_000_000) {
        (nano / 1_000_000, 3)
    } else if nano.is_multiple_of(1_000) {
        (nano / 1_000, 6)
    } else {
        (nano, 9)
    };
    if width > 0 {
        buf[len] = b'.';
        digits(&mut buf[len + 1..len + 1 + width], fraction);
        len += 1 + width;
    }
    buf[len] = b'Z';
    Some(len + 1)
}

/// `value` in decimal, zero-padded to fill `out` (the caller sizes `out` to fit it).
fn digits(out: &mut [u8], mut value: u32) {
    for place in out.iter_mut().rev() {
        *place = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[derive(Serialize)]
    struct Ours(#[serde(serialize_with = "utc")] DateTime<Utc>);

    fn same_as_chrono(at: DateTime<Utc>) {
        assert_eq!(
            serde_json::to_string(&Ours(at)).unwrap(),
            serde_json::to_string(&at).unwrap(),
            "{at:?}"
        );
    }

    #[test]
    fn writes_what_chrono_writes_for_every_fraction_width() {
        let second = Utc.with_ymd_and_hms(2026, 12, 6, 20, 37, 5).unwrap();
        for nanos in [
            0,
            1,
            999,
            1_000,
            120_000,
            123_456_000,
            5_000_000,
            100_000_000,
            999_999_999,
            123_456_789,
        ] {
            same_as_chrono(second + chrono::Duration::nanoseconds(nanos));
        }
    }

    #[test]
    fn writes_what_chrono_writes_across_the_calendar() {
        // A walk over 0000–9999 with a step that is no round number of days or seconds, so
        // every field takes many values; the edges of the range, leap days and leap seconds too.
        let mut at = Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap();
        let end = Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap();
        let step = chrono::Duration::seconds(31_557_013) + chrono::Duration::microseconds(7_919);
        while at < end {
            same_as_chrono(at);
            at += step;
        }
        same_as_chrono(end + chrono::Duration::microseconds(999_999));
        same_as_chrono(Utc.with_ymd_and_hms(2024, 2, 29, 0, 0, 0).unwrap());
        same_as_chrono(Utc.with_ymd_and_hms(-1, 12, 31, 23, 59, 59).unwrap());
        same_as_chrono(Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap());
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_milli_opt(23, 59, 59, 1_500)
            .unwrap()
            .and_utc();
        same_as_chrono(leap);
    }

    #[test]
    fn an_absent_timestamp_is_null() {
        #[derive(Serialize)]
        struct Maybe(#[serde(serialize_with = "utc_option")] Option<DateTime<Utc>>);
        assert_eq!(serde_json::to_string(&Maybe(None)).unwrap(), "null");
        let at = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(
            serde_json::to_string(&Maybe(Some(at))).unwrap(),
            "\"2026-01-02T03:04:05Z\""
        );
    }
}
