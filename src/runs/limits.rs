//! A run's limits: the `[runs]` defaults, lowered per run (`config.limits` at start or resume,
//! never above the defaults), stored with the run and checked before every step (the check is
//! `executor/decide/limits.rs`).
//!
//! ```text
//! before a step ─▶ steps so far ≥ maxSteps        ─▶ Failed  MaxSteps
//!               ─▶ time in steps ≥ maxTimeMs      ─▶ Failed  MaxTime
//!               ─▶ credits + the step's hold > maxCredits ─▶ Paused MaxCredits (resume with more)
//! ```

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunLimits {
    pub max_credits: i64,
    pub max_steps: i64,
    /// Time spent inside steps (waits for time or people do not count).
    pub max_time_ms: i64,
}

/// Lower limits asked for one run; each must be within the defaults.
#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LimitOverrides {
    /// At most this many credits, 1 up to the server's default.
    pub max_credits: Option<i64>,
    /// At most this many steps, 1 up to the server's default.
    pub max_steps: Option<i64>,
    /// At most this long inside steps (waits do not count), 1 up to the server's default.
    pub max_time_ms: Option<i64>,
}

impl RunLimits {
    /// These limits with `overrides` applied; an override above the default or below 1 is
    /// refused with its name.
    pub fn with(self, overrides: LimitOverrides) -> Result<Self, String> {
        let pick = |name: &str, asked: Option<i64>, default: i64| match asked {
            None => Ok(default),
            Some(v) if (1..=default).contains(&v) => Ok(v),
            Some(v) => Err(format!("{name} {v} is outside 1..={default}")),
        };
        Ok(Self {
            max_credits: pick("maxCredits", overrides.max_credits, self.max_credits)?,
            max_steps: pick("maxSteps", overrides.max_steps, self.max_steps)?,
            max_time_ms: pick("maxTimeMs", overrides.max_time_ms, self.max_time_ms)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_may_lower_the_defaults_only() {
        let defaults = RunLimits {
            max_credits: 100,
            max_steps: 10,
            max_time_ms: 1000,
        };
        let lower = LimitOverrides {
            max_steps: Some(3),
            ..Default::default()
        };
        assert_eq!(defaults.with(lower).unwrap().max_steps, 3);
        let higher = LimitOverrides {
            max_credits: Some(101),
            ..Default::default()
        };
        assert!(defaults.with(higher).unwrap_err().contains("maxCredits"));
        let zero = LimitOverrides {
            max_time_ms: Some(0),
            ..Default::default()
        };
        assert!(defaults.with(zero).is_err());
    }
}
