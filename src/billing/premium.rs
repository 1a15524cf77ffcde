//! Premium's monthly credits: every active plan (`expires_at` NULL or ahead) is granted
//! `stripe.premium_monthly_credits` once per calendar month (UTC). The ledger key
//! `premium:<user>:<YYYY-MM>` makes it once however many nodes run the hourly job and however
//! often it is retried; the month a plan starts is granted at checkout with the same key.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::Billing;
use crate::credits::Payer;
use crate::ids::UserId;
use crate::jobs::scheduler::Schedule;
use crate::jobs::{JobContext, JobError, JobHandler, NewJob, Queue};

/// Plans granted per statement batch.
const BATCH: i64 = 500;

impl Billing {
    /// Grants `user`'s premium credits for the month of `at`, once; the new balance if this
    /// call granted.
    pub async fn grant_month_in(
        &self,
        tx: &mut PgConnection,
        user: UserId,
        at: DateTime<Utc>,
    ) -> Result<Option<i64>, sqlx::Error> {
        self.credits
            .grant_in(
                tx,
                Payer::User(user),
                self.settings.premium_monthly_credits,
                "Bonus",
                "PremiumMonthly",
                &format!("premium:{user}:{}", at.format("%Y-%m")),
            )
            .await
    }

    /// Grants this month's credits to every active plan not granted yet; how many were.
    pub async fn grant_due(&self, at: DateTime<Utc>) -> Result<u64, sqlx::Error> {
        let month = at.format("%Y-%m").to_string();
        let mut granted = 0;
        loop {
            let mut tx = self.pool().begin().await?;
            let due: Vec<UserId> = sqlx::query_scalar(
                "SELECT p.user_id FROM premium_plans p
                   JOIN users u ON u.id = p.user_id AND NOT u.is_bot
                  WHERE (p.expires_at IS NULL OR p.expires_at > $1)
                    AND NOT EXISTS (SELECT 1 FROM credit_ledger_entries e
                                     WHERE e.idempotency_key = 'premium:' || p.user_id || ':' || $2)
                  ORDER BY p.user_id LIMIT $3",
            )
            .bind(at)
            .bind(&month)
            .bind(BATCH)
            .fetch_all(&mut *tx)
            .await?;
            let mut rooms = Vec::new();
            for user in &due {
                if let Some(balance) = self.grant_month_in(&mut tx, *user, at).await? {
                    granted += 1;
                    rooms.push(self.credits_event(&mut tx, *user, None, balance).await?);
                }
            }
            tx.commit().await?;
            self.kick(&rooms);
            if (due.len() as i64) < BATCH {
                return Ok(granted);
            }
        }
    }
}

/// `billing.grant-premium-credits`: the hourly tick of the grants.
pub struct GrantPremiumCredits {
    pub billing: Billing,
}

impl JobHandler for GrantPremiumCredits {
    const KIND: &'static str = "billing.grant-premium-credits";
    const QUEUE: Queue = Queue::Maintenance;
    type Payload = serde_json::Value;

    async fn handle(&self, _: serde_json::Value, ctx: JobContext) -> Result<(), JobError> {
        let granted = self
            .billing
            .grant_due(Utc::now())
            .await
            .map_err(JobError::retryable)?;
        if granted > 0 {
            tracing::info!(job_id = %ctx.id, granted, "premium credits granted");
        }
        Ok(())
    }
}

fn grant_job() -> NewJob {
    NewJob::new(
        Queue::Maintenance,
        GrantPremiumCredits::KIND,
        serde_json::json!({}),
    )
}

/// The schedule, on nodes with billing configured.
pub fn schedule() -> Schedule {
    Schedule {
        name: "grant-premium-credits",
        every: Duration::from_secs(3600),
        make: grant_job,
    }
}
