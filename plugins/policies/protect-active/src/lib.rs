//! # protect-active
//!
//! Checks `cleanup` and `swap-pointer`: no step loses a database someone uses.
//!
//! `cleanup` (deleting `target-db`) is denied when:
//! - there are no target database facts (nothing to check is not a licence to delete);
//! - the database is `active` (the namespace's pointer names it), or is `in-flight` (another
//!   execution is still creating or using it);
//! - it is the `current-pointer` or the `new-pointer` of this execution;
//! - its name does not start with `<namespace>-` (another namespace's database);
//! - the environment is a production one and the delete keeps no final snapshot
//!   (`final-snapshot` false). Production is `prod` and `production`, plus the environments in
//!   the `final_snapshot_environments` setting.
//!
//! `swap-pointer` (pointing the namespace at `new-pointer`) is denied when:
//! - there is no `new-pointer`;
//! - `new-pointer` equals `current-pointer`: a blue/green deploy always restores a new database,
//!   so a swap onto the database the pointer already names means the deploy lost track of what
//!   it created (there is no legitimate identical redeploy: the restore would have failed);
//! - `new-pointer` does not start with `<namespace>-`;
//! - `target-db` names another database than `new-pointer`, or is `in-flight` (another
//!   execution is creating or using it).
//!
//! Settings: `{"final_snapshot_environments": ["staging"]}` (default `[]`; `"*"` for all).

use serde::Deserialize;
use switchyard_policy_kit::prelude::*;

pub struct ProtectActive;

impl Policy for ProtectActive {
    const NAME: &'static str = "protect-active";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const STEPS: &'static [Step] = &[Step::SwapPointer, Step::Cleanup];
    const SETTINGS_SCHEMA: &'static str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "protect-active settings",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "final_snapshot_environments": {
      "description": "Environments besides prod and production whose database deletes must keep a final snapshot; \"*\" for all.",
      "type": "array", "items": {"type": "string"}, "default": []
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

export_policy!(ProtectActive);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub final_snapshot_environments: Vec<String>,
}

impl Settings {
    fn needs_final_snapshot(&self, environment: &str) -> bool {
        matches!(environment, "prod" | "production")
            || self
                .final_snapshot_environments
                .iter()
                .any(|env| env == "*" || env == environment)
    }
}

/// The decision for `ctx` under `settings`.
pub fn check(ctx: &Context, settings: &Settings) -> Decision {
    match ctx.step {
        Step::Cleanup => cleanup(ctx, settings),
        Step::SwapPointer => swap(ctx),
        _ => Decision::allow(),
    }
}

fn belongs(id: &str, namespace: &str) -> bool {
    id.strip_prefix(namespace)
        .is_some_and(|rest| rest.len() > 1 && rest.starts_with('-'))
}

fn cleanup(ctx: &Context, settings: &Settings) -> Decision {
    let ns = &ctx.namespace;
    let Some(db) = &ctx.target_db else {
        // The orphan sweep deleting a snapshot: no database is at stake, only whose it is.
        if let Some(snapshot) = &ctx.snapshot {
            let id = &snapshot.id;
            return if belongs(id, ns) {
                Decision::allow()
            } else {
                Decision::deny(format!(
                    "snapshot {id} does not belong to namespace {ns} (its name does not start with {ns}-)"
                ))
            };
        }
        return Decision::deny(format!(
            "cleanup in {ns} has no target database facts; nothing is deleted unchecked"
        ));
    };
    let id = &db.id;
    let mut checks = Checks::new();
    checks
        .deny_if(db.active, || {
            format!("database {id} is the active database of {ns}; cleanup never deletes it")
        })
        .deny_if(db.in_flight, || {
            format!("database {id} is in flight (another execution is creating or using it); cleanup never deletes it")
        })
        .deny_if(ctx.current_pointer.as_ref() == Some(id), || {
            format!("database {id} is the current pointer of {ns}; cleanup never deletes it")
        })
        .deny_if(ctx.new_pointer.as_ref() == Some(id), || {
            format!("database {id} is the new pointer of this execution; cleanup never deletes it")
        })
        .deny_if(!belongs(id, ns), || {
            format!("database {id} does not belong to namespace {ns} (its name does not start with {ns}-)")
        })
        .deny_if(
            settings.needs_final_snapshot(&ctx.environment) && !db.final_snapshot,
            || {
                format!(
                    "deleting database {id} in {} environment {} must keep a final snapshot",
                    if matches!(ctx.environment.as_str(), "prod" | "production") { "production" } else { "protected" },
                    ctx.environment
                )
            },
        );
    checks.finish()
}

fn swap(ctx: &Context) -> Decision {
    let ns = &ctx.namespace;
    let Some(new) = &ctx.new_pointer else {
        return Decision::deny(format!("swap-pointer in {ns} has no new pointer to check"));
    };
    let mut checks = Checks::new();
    checks
        .deny_if(ctx.current_pointer.as_ref() == Some(new), || {
            format!("swap-pointer would point {ns} at {new}, the database it already names: the deploy lost track of the database it restored")
        })
        .deny_if(!belongs(new, ns), || {
            format!("swap-pointer would point {ns} at {new}, which does not belong to it (its name does not start with {ns}-)")
        });
    if let Some(db) = &ctx.target_db {
        checks
            .deny_if(db.id != *new, || {
                format!("swap-pointer target database {} is not the new pointer {new}", db.id)
            })
            .deny_if(db.in_flight, || {
                format!("database {} is in flight (another execution is creating or using it); {ns} must not point at it", db.id)
            });
    }
    checks.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ownership() {
        assert!(belongs("xy-0146-prod-20261127-120000", "xy-0146-prod"));
        assert!(!belongs("xy-0146-prod", "xy-0146-prod"));
        assert!(!belongs("xy-0146-prod-", "xy-0146-prod"));
        assert!(!belongs("xy-0146-production-1", "xy-0146-prod"));
        assert!(!belongs("xy-0146-qa-20261127-120000", "xy-0146-prod"));
    }

    #[test]
    fn fixtures() {
        switchyard_policy_kit::testing::check_fixtures::<ProtectActive>(include_str!(
            "../fixtures.json"
        ));
    }
}
