//! Reading a row's columns by position, for the hot pages (issue 13).
//!
//! sqlx checks every value's type against the column's before decoding it: a comparison of type
//! descriptors, names included, that was 5% of the instructions of a page of chat messages
//! (`benches/load/page_callgrind.sh`). Where the statement's columns are our own, release builds
//! skip it; debug builds, which the tests run, keep it, so a column whose type drifts from its
//! Rust field still fails a test. A value that does not decode is an error either way.

use chrono::{DateTime, Utc};
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgRow, PgValueFormat, Postgres};
use sqlx::{Decode, Row, Type, ValueRef};

/// Column `index` of `row`, decoded as `T`.
#[inline]
pub fn at<'r, T>(row: &'r PgRow, index: usize) -> Result<T, sqlx::Error>
where
    T: Decode<'r, Postgres> + Type<Postgres>,
{
    #[cfg(debug_assertions)]
    {
        row.try_get(index)
    }
    #[cfg(not(debug_assertions))]
    {
        row.try_get_unchecked(index)
    }
}

/// Column `index` of `row`, a `timestamptz`, as sqlx would decode it into `DateTime<Utc>`.
///
/// sqlx builds PostgreSQL's epoch as a calendar date and adds a `Duration` for every value
/// (~780 instructions; a page of messages has 40); the value is microseconds since
/// 2000-01-01 UTC, which chrono turns into a time straight from the Unix epoch.
pub fn timestamp_at(row: &PgRow, index: usize) -> Result<DateTime<Utc>, sqlx::Error> {
    /// 2000-01-01T00:00:00Z in microseconds since 1970-01-01T00:00:00Z.
    const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;
    let decode_error = |source: BoxDynError| sqlx::Error::ColumnDecode {
        index: index.to_string(),
        source,
    };
    let value = row.try_get_raw(index)?;
    #[cfg(debug_assertions)]
    {
        use sqlx::TypeInfo;
        let ty = value.type_info();
        assert!(
            <DateTime<Utc> as Type<Postgres>>::compatible(&ty),
            "column {index} is {}, not a timestamptz",
            ty.name()
        );
    }
    if value.is_null() {
        return Err(decode_error(Box::new(sqlx::error::UnexpectedNullError)));
    }
    if value.format() != PgValueFormat::Binary {
        return Decode::<Postgres>::decode(value).map_err(decode_error);
    }
    let bytes: [u8; 8] = value
        .as_bytes()
        .map_err(decode_error)?
        .try_into()
        .map_err(|_| decode_error("a timestamptz is 8 bytes".into()))?;
    i64::from_be_bytes(bytes)
        .checked_add(POSTGRES_EPOCH_MICROS)
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(|| decode_error("timestamptz out of range".into()))
}
