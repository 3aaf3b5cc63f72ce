//! # snapshot-freshness
//!
//! Checks `create-database`: the snapshot a new database is restored from must be recent enough
//! for the namespace's environment (`context.environment`).
//!
//! - **Too old**: denied when `now - snapshot.created_at` exceeds the environment's limit
//!   (`max_age_hours`, looked up by environment, else `*`).
//! - **Nearly too old**: allowed with a warning when the age exceeds 80 % of the limit.
//! - **From the future**: denied when `snapshot.created_at` is more than 5 minutes after `now`
//!   (a clock or data error); up to 5 minutes counts as age 0.
//! - **No snapshot facts**: denied (a restore without a snapshot cannot be checked).
//!
//! Settings: `{"max_age_hours": {"prod": 24, "qa": 72, "*": 168}}` (those are the defaults; the
//! entries given overlay them, so `{"max_age_hours": {"prod": 12}}` keeps qa at 72 and the rest
//! at 168). Limits are whole hours, at least 1. Unknown settings are refused.

use std::collections::BTreeMap;

use serde::Deserialize;
use switchyard_policy_kit::prelude::*;

/// How far in the future a snapshot's `created_at` may be before it is an error.
const CLOCK_SKEW_SECONDS: i64 = 300;

pub struct SnapshotFreshness;

impl Policy for SnapshotFreshness {
    const NAME: &'static str = "snapshot-freshness";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const STEPS: &'static [Step] = &[Step::CreateDatabase];
    const SETTINGS_SCHEMA: &'static str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "snapshot-freshness settings",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "max_age_hours": {
      "description": "Per environment, the age in hours beyond which a snapshot is refused for a restore; '*' applies to every other environment. Overlays the defaults {\"prod\": 24, \"qa\": 72, \"*\": 168}.",
      "type": "object",
      "additionalProperties": {"type": "integer", "minimum": 1, "maximum": 4294967295}
    }
  }
}"#;

    fn evaluate(ctx: &Context) -> Decision {
        match ctx.settings::<Settings>().and_then(Settings::limits) {
            Ok(limits) => check(ctx, &limits),
            Err(reason) => Decision::deny(reason),
        }
    }
}

export_policy!(SnapshotFreshness);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    max_age_hours: BTreeMap<String, u32>,
}

/// Maximum snapshot age in hours, per environment (`*`: any other).
pub type Limits = BTreeMap<String, u32>;

impl Settings {
    fn limits(self) -> Result<Limits, String> {
        let mut limits: Limits = [("prod", 24), ("qa", 72), ("*", 168)]
            .into_iter()
            .map(|(env, hours)| (env.to_owned(), hours))
            .collect();
        for (env, hours) in self.max_age_hours {
            if hours == 0 {
                return Err(format!(
                    "invalid setting `max_age_hours.{env}`: must be at least 1 hour"
                ));
            }
            limits.insert(env, hours);
        }
        Ok(limits)
    }
}

fn hours(secs: i64) -> String {
    format!("{:.1} h", secs as f64 / 3600.0)
}

/// The decision for `ctx` under `limits`.
pub fn check(ctx: &Context, limits: &Limits) -> Decision {
    let Some(snapshot) = &ctx.snapshot else {
        return Decision::deny(format!(
            "{} in {} has no snapshot facts, so the snapshot's age cannot be checked",
            ctx.step, ctx.namespace
        ));
    };
    let env = ctx.environment.as_str();
    let (scope, limit_hours) = match limits.get(env) {
        Some(hours) => (env, *hours),
        None => ("*", limits.get("*").copied().unwrap_or(168)),
    };
    let limit = i64::from(limit_hours) * 3600;
    let age = ctx.now.saturating_sub(snapshot.created_at);
    let mut checks = Checks::new();
    if age < -CLOCK_SKEW_SECONDS {
        checks.deny(format!(
            "snapshot {} was created at {} UTC, {} after now ({} UTC): its creation time is in the future",
            snapshot.id,
            DateTime::from_unix(snapshot.created_at),
            hours(-age),
            ctx.now_utc()
        ));
    } else if age > limit {
        checks.deny(format!(
            "snapshot {} is {} old; environment {} allows at most {limit_hours} h{}",
            snapshot.id,
            hours(age),
            env,
            if scope == "*" { " (the '*' limit)" } else { "" }
        ));
    } else {
        checks.warn_if(age * 10 > limit * 8, || {
            format!(
                "snapshot {} is {} old, over 80% of the {limit_hours} h limit for environment {env}",
                snapshot.id,
                hours(age)
            )
        });
    }
    checks.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(env: &str, age_secs: i64) -> Context {
        let now = 1_795_836_600;
        Context {
            environment: env.to_owned(),
            now,
            snapshot: Some(SnapshotFacts {
                id: "snap".to_owned(),
                created_at: now - age_secs,
                ..SnapshotFacts::default()
            }),
            ..Context::default()
        }
    }

    #[test]
    fn limits_and_boundaries() {
        let limits = Settings::default().limits().unwrap();
        assert!(check(&ctx("prod", 24 * 3600), &limits).is_allow());
        assert!(!check(&ctx("prod", 24 * 3600 + 1), &limits).is_allow());
        assert!(check(&ctx("prod", 19 * 3600), &limits).warnings.is_empty());
        assert_eq!(check(&ctx("prod", 20 * 3600), &limits).warnings.len(), 1);
        assert!(check(&ctx("dev", 168 * 3600), &limits).is_allow());
        assert!(!check(&ctx("dev", 169 * 3600), &limits).is_allow());
        assert!(check(&ctx("prod", -300), &limits).is_allow());
        assert!(!check(&ctx("prod", -301), &limits).is_allow());
    }

    #[test]
    fn overlay_and_zero() {
        let mut settings = Settings::default();
        settings.max_age_hours.insert("prod".into(), 12);
        let limits = settings.limits().unwrap();
        assert_eq!((limits["prod"], limits["qa"], limits["*"]), (12, 72, 168));
        let mut settings = Settings::default();
        settings.max_age_hours.insert("qa".into(), 0);
        assert!(settings.limits().unwrap_err().contains("max_age_hours.qa"));
    }

    #[test]
    fn fixtures() {
        switchyard_policy_kit::testing::check_fixtures::<SnapshotFreshness>(include_str!(
            "../fixtures.json"
        ));
    }
}
