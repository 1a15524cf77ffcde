//! `db::columns`: the hot pages' own column readers give what sqlx's decoders give.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::helpers::{TestDb, test_settings};

#[tokio::test]
async fn timestamps_read_by_position_equal_sqlxs_own_decoding() {
    let db = TestDb::new(&test_settings()).await;
    // Before and after PostgreSQL's epoch (2000-01-01), whole and fractional seconds, a leap
    // day, the far past and future that chrono still holds.
    let rows = sqlx::query(
        "SELECT ts FROM (VALUES
            (timestamptz '1970-01-01 00:00:00+00'),
            ('1969-07-20 20:17:40.5+00'),
            ('1999-12-31 23:59:59.999999+00'),
            ('2000-01-01 00:00:00+00'),
            ('2000-01-01 00:00:00.000001+00'),
            ('2024-02-29 12:00:00.123+00'),
            ('2026-12-06 21:39:01.123456+05:30'),
            ('0001-01-01 00:00:00+00'),
            ('9999-12-31 23:59:59.999999+00'),
            ('100000-01-01 00:00:00+00')
         ) v(ts)",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 10);
    for row in &rows {
        let ours = vrooli::db::columns::timestamp_at(row, 0).unwrap();
        let sqlx: DateTime<Utc> = row.try_get(0).unwrap();
        assert_eq!(ours, sqlx);
    }

    let null = sqlx::query("SELECT NULL::timestamptz")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(vrooli::db::columns::timestamp_at(&null, 0).is_err());
    db.drop_now().await;
}
