use sqlx::PgPool;
use vrooli::ids::Snowflake;
use vrooli::startup::seed;

use crate::helpers::spawn_app_with;

/// Every seeded table, as text, in a stable order.
async fn snapshot(pool: &PgPool) -> Vec<String> {
    let mut rows = Vec::new();
    for table in ["users", "emails", "user_auth", "teams", "members"] {
        let sql = format!("SELECT row_to_json(t)::text FROM {table} t ORDER BY id");
        rows.extend(
            sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql))
                .fetch_all(pool)
                .await
                .unwrap(),
        );
    }
    rows
}

#[tokio::test]
async fn seeding_twice_changes_nothing() {
    let app = spawn_app_with(
        |s| s.seed.admin_password = "a long admin password".to_string().into(),
        None,
    )
    .await;
    // Start-up seeded once; seed again, as a second node or `vrooli seed` would.
    let before = snapshot(&app.db.pool).await;
    let ids = Snowflake::new(7).unwrap();
    let report = seed::run(&app.db.pool, &ids, &app.settings.seed)
        .await
        .unwrap();
    assert_eq!(report.inserted, 0);
    assert_eq!(snapshot(&app.db.pool).await, before);

    let (admins, bots, teams, members): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM users WHERE is_admin AND lower(handle) = 'admin'),
                (SELECT count(*) FROM users WHERE is_bot AND handle = 'valyxa' AND name = 'Valyxa'),
                (SELECT count(*) FROM teams WHERE name = 'Vrooli'),
                (SELECT count(*) FROM members m JOIN teams t ON t.id = m.team_id WHERE t.name = 'Vrooli')",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!((admins, bots, teams, members), (1, 1, 1, 2));

    let hash: String =
        sqlx::query_scalar("SELECT hashed_password FROM user_auth WHERE user_id = $1")
            .bind(report.admin)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert!(
        vrooli::auth::password::verify("a long admin password".to_string().into(), hash)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn seeds_running_at_once_create_one_set() {
    let app = spawn_app_with(|_| {}, None).await;
    sqlx::query("TRUNCATE users, teams CASCADE")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let settings = app.settings.seed.clone();
    let runs = (0..4u16).map(|worker| {
        let pool = app.db.pool.clone();
        let settings = settings.clone();
        tokio::spawn(async move {
            let ids = Snowflake::new(worker).unwrap();
            seed::run(&pool, &ids, &settings).await.unwrap()
        })
    });
    let reports: Vec<_> = futures_util::future::join_all(runs)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(
        reports
            .windows(2)
            .all(|w| w[0].admin == w[1].admin && w[0].team == w[1].team)
    );
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(users, 2);
}

/// Without `seed.admin_password` the administrator still gets a password the documented way:
/// the reset mail reaches the seeded address and its code sets one.
#[tokio::test]
async fn the_seeded_admin_without_a_password_gets_one_by_reset() {
    use crate::auth::{mailed_code, post};
    use serde_json::json;

    let app = spawn_app_with(|s| s.seed.admin_password = String::new().into(), None).await;
    let email = app.settings.seed.admin_email.clone();
    let asked = post(
        &app,
        "/auth/email/requestPasswordChange",
        None,
        json!({"email": email}),
    )
    .await;
    assert_eq!(asked.status, 200);
    let code = mailed_code(&app, &email, "passwordReset").await;
    let reset = post(
        &app,
        "/auth/email/resetPassword",
        None,
        json!({"code": code, "newPassword": "the admin's own password"}),
    )
    .await;
    assert_eq!(reset.status, 200);
    let login = post(
        &app,
        "/auth/email/login",
        None,
        json!({"email": email, "password": "the admin's own password"}),
    )
    .await;
    assert_eq!(login.status, 200);
}
