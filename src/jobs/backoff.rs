//! Retry delays: exponential from `base`, doubled per failed attempt, capped at `max`, with
//! "equal jitter" (half fixed, half random) so a burst of failures does not retry in lockstep.

use std::time::Duration;

use rand::Rng;

/// The delay before the retry that follows failed attempt number `attempt` (1-based).
pub fn retry_delay(attempt: i32, base: Duration, max: Duration, rng: &mut impl Rng) -> Duration {
    let exponent = u32::try_from(attempt.saturating_sub(1))
        .unwrap_or(0)
        .min(30);
    let full = base.saturating_mul(1u32 << exponent).min(max);
    let half = full / 2;
    half + half.mul_f64(rng.random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_within_jitter_and_caps() {
        let base = Duration::from_secs(10);
        let max = Duration::from_secs(3600);
        let mut rng = rand::rng();
        for (attempt, full) in [(1, 10), (2, 20), (3, 40), (4, 80), (10, 3600), (40, 3600)] {
            for _ in 0..100 {
                let d = retry_delay(attempt, base, max, &mut rng);
                let full = Duration::from_secs(full);
                assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
            }
        }
    }
}
