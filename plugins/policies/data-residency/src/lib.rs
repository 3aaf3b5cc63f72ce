//! # data-residency
//!
//! Checks `snapshot` and `create-database`: the tenant's data stays in the regions its customer
//! allows.
//!
//! - **Where the data goes**: the region of the target database (`target-db.region`, or
//!   `context.region`, the installation's, when the target has none or there is no target yet
//!   as at `snapshot`) must be in `allowed_regions`.
//! - **Where it comes from**: when the context has a source database (`source-db`, the one a
//!   `snapshot` is taken of) with a region, that region must be allowed too.
//! - **Unknown region**: denied (no target region and no `context.region`).
//! - **No `allowed_regions` setting**: denied: the policy cannot guess a customer's regions.
//!   An empty list allows nothing.
//!
//! Settings: `{"allowed_regions": ["eu-west-1", "eu-central-1"]}` (required).

use serde::Deserialize;
use switchyard_policy_kit::prelude::*;

pub struct DataResidency;

impl Policy for DataResidency {
    const NAME: &'static str = "data-residency";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const STEPS: &'static [Step] = &[Step::Snapshot, Step::CreateDatabase];
    const SETTINGS_SCHEMA: &'static str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "data-residency settings",
  "type": "object",
  "additionalProperties": false,
  "required": ["allowed_regions"],
  "properties": {
    "allowed_regions": {
      "description": "The AWS regions the customer's databases and snapshots may live in, e.g. [\"eu-west-1\", \"eu-central-1\"].",
      "type": "array",
      "items": {"type": "string", "pattern": "^[a-z]{2}(-[a-z]+)+-[0-9]+$"}
    }
  }
}"#;

    fn evaluate(ctx: &Context) -> Decision {
        match ctx.settings::<Settings>() {
            Ok(Settings {
                allowed_regions: Some(allowed),
            }) => check(ctx, &allowed),
            Ok(Settings {
                allowed_regions: None,
            }) => Decision::deny(
                "setting `allowed_regions` is required: the regions the customer's data may live in",
            ),
            Err(reason) => Decision::deny(reason),
        }
    }
}

export_policy!(DataResidency);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    allowed_regions: Option<Vec<String>>,
}

/// The decision for `ctx` given the allowed regions.
pub fn check(ctx: &Context, allowed: &[String]) -> Decision {
    let is_allowed = |region: &str| allowed.iter().any(|ok| ok == region);
    let listed = || {
        if allowed.is_empty() {
            "none: allowed_regions is empty".to_owned()
        } else {
            allowed.join(", ")
        }
    };
    let mut checks = Checks::new();
    let target = ctx.target_db.as_ref();
    let (what, region) = match target.filter(|db| !db.region.is_empty()) {
        Some(db) => (format!("database {}", db.id), db.region.as_str()),
        None => (
            match target {
                Some(db) => format!("database {} (in the installation's region)", db.id),
                None => format!(
                    "the data of {} (in the installation's region)",
                    ctx.namespace
                ),
            },
            ctx.region.as_str(),
        ),
    };
    if region.is_empty() {
        checks.deny(format!(
            "the region of {what} is unknown: neither target-db.region nor context.region is set"
        ));
    } else {
        checks.deny_if(!is_allowed(region), || {
            format!(
                "{what} would live in {region}, which customer {} does not allow (allowed: {})",
                ctx.customer,
                listed()
            )
        });
    }
    if let Some(source) = ctx.source_db.as_ref().filter(|db| !db.region.is_empty()) {
        checks.deny_if(!is_allowed(&source.region), || {
            format!(
                "source database {} lives in {}, which customer {} does not allow (allowed: {})",
                source.id,
                source.region,
                ctx.customer,
                listed()
            )
        });
    }
    checks.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures() {
        switchyard_policy_kit::testing::check_fixtures::<DataResidency>(include_str!(
            "../fixtures.json"
        ));
    }
}
