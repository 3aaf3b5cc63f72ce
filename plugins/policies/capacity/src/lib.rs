//! # capacity
//!
//! Checks `create-database`: the new database fits the tenant's plan.
//!
//! - **Plan**: `context.plan` (the catalog's), else the `default_plan` setting (with a warning);
//!   denied when there is neither, or when the plan is not one of `plans`.
//! - **Instance class**: `target-db.instance-class` must be one of the plan's
//!   `instance_classes` (a plan without the list allows any class; an unknown class is denied
//!   when there is a list).
//! - **Storage**: the database's storage is the larger of `target-db.allocated-storage-gib` and
//!   the snapshot's (a restore cannot shrink below its snapshot); it must not exceed the plan's
//!   `max_storage_gib` (a plan without it has no limit). Unknown storage (0) is allowed with a
//!   warning.
//! - **No target database facts**: denied.
//!
//! Settings: `{"plans": {"standard": {"instance_classes": ["db.t4g.medium", "db.t4g.large"],
//! "max_storage_gib": 200}, "premium": {...}}, "default_plan": "standard"}`; `plans` is
//! required, `default_plan` optional.

use std::collections::BTreeMap;

use serde::Deserialize;
use switchyard_policy_kit::prelude::*;

pub struct Capacity;

impl Policy for Capacity {
    const NAME: &'static str = "capacity";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const STEPS: &'static [Step] = &[Step::CreateDatabase];
    const SETTINGS_SCHEMA: &'static str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "capacity settings",
  "type": "object",
  "additionalProperties": false,
  "required": ["plans"],
  "properties": {
    "plans": {
      "description": "The plans, by name (the catalog's plan for a tenant).",
      "type": "object",
      "additionalProperties": {
        "type": "object",
        "additionalProperties": false,
        "properties": {
          "instance_classes": {
            "description": "The RDS instance classes the plan allows; any when absent.",
            "type": "array", "items": {"type": "string"}
          },
          "max_storage_gib": {
            "description": "The most allocated storage the plan allows, in GiB; no limit when absent.",
            "type": "integer", "minimum": 0, "maximum": 4294967295
          }
        }
      }
    },
    "default_plan": {
      "description": "The plan of a tenant the catalog gives none.",
      "type": "string"
    }
  }
}"#;

    fn evaluate(ctx: &Context) -> Decision {
        match ctx.settings::<Settings>() {
            Ok(settings) => check(ctx, &settings),
            Err(reason) => Decision::deny(reason),
        }
    }
}

export_policy!(Capacity);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub plans: Option<BTreeMap<String, Plan>>,
    #[serde(default)]
    pub default_plan: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    #[serde(default)]
    pub instance_classes: Option<Vec<String>>,
    #[serde(default)]
    pub max_storage_gib: Option<u32>,
}

/// The decision for `ctx` under `settings`.
pub fn check(ctx: &Context, settings: &Settings) -> Decision {
    let Some(plans) = &settings.plans else {
        return Decision::deny(
            "setting `plans` is required: the instance classes and storage each plan allows",
        );
    };
    let mut checks = Checks::new();
    let name = match ctx.plan.as_deref().filter(|p| !p.is_empty()) {
        Some(plan) => plan,
        None => match &settings.default_plan {
            Some(plan) => {
                checks.warn(format!(
                    "{} has no plan in the catalog; checked against default_plan {plan}",
                    ctx.namespace
                ));
                plan
            }
            None => {
                return Decision::deny(format!(
                    "{} has no plan in the catalog and no default_plan is set",
                    ctx.namespace
                ));
            }
        },
    };
    let Some(plan) = plans.get(name) else {
        let known: Vec<&str> = plans.keys().map(String::as_str).collect();
        return Decision::deny(format!(
            "plan {name:?} of {} is not one of the configured plans ({})",
            ctx.namespace,
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ));
    };
    let Some(db) = &ctx.target_db else {
        return Decision::deny(format!(
            "{} in {} has no target database facts, so its size cannot be checked",
            ctx.step, ctx.namespace
        ));
    };
    if let Some(classes) = &plan.instance_classes {
        if db.instance_class.is_empty() {
            checks.deny(format!(
                "the instance class of database {} is unknown; plan {name} allows {}",
                db.id,
                classes.join(", ")
            ));
        } else {
            checks.deny_if(!classes.contains(&db.instance_class), || {
                format!(
                    "instance class {} of database {} is not in plan {name} (allowed: {})",
                    db.instance_class,
                    db.id,
                    if classes.is_empty() {
                        "none".to_owned()
                    } else {
                        classes.join(", ")
                    }
                )
            });
        }
    }
    if let Some(max) = plan.max_storage_gib {
        let from_snapshot = ctx.snapshot.as_ref().map_or(0, |s| s.allocated_storage_gib);
        let storage = db.allocated_storage_gib.max(from_snapshot);
        if storage == 0 {
            checks.warn(format!(
                "the storage of database {} is unknown; plan {name}'s {max} GiB limit was not checked",
                db.id
            ));
        } else {
            checks.deny_if(storage > max, || {
                format!(
                    "database {} would have {storage} GiB of storage{}, over plan {name}'s {max} GiB",
                    db.id,
                    if from_snapshot > db.allocated_storage_gib { " (its snapshot's)" } else { "" }
                )
            });
        }
    }
    checks.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures() {
        switchyard_policy_kit::testing::check_fixtures::<Capacity>(include_str!(
            "../fixtures.json"
        ));
    }
}
