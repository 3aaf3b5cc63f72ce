//! # naming
//!
//! Checks every step: the namespace and the names of the resources the step touches follow the
//! convention.
//!
//! - **Namespace**: `^[a-z]{2,10}-[0-9]{4}-(<environment>)$`, the environment one of the
//!   `environments` setting (default `dev`, `qa`, `test`, `staging`, `prod`). Stricter than what
//!   Switchyard itself accepts (a customer of 2-12 letters *or digits*, any environment).
//! - **Its parts**: `context.customer`, `project` and `environment` equal the namespace's parts.
//! - **Source namespace** (when the deploy copies another tier's data): the same pattern.
//! - **Database names**: `target-db.id` and `new-pointer` are `<namespace>-<timestamp>`.
//! - **Snapshot names**: `snapshot.id`, when this execution took it, is
//!   `<source namespace>-<timestamp>` (the namespace itself when there is no source). A given
//!   snapshot (a promoted artifact, possibly `rds:`-prefixed or a final snapshot
//!   `<db>-final-<timestamp>`) is not held to the convention, and nor is `current-pointer` (a
//!   name from before the policy) or `source-db.id` (another namespace's database). The contract
//!   carries no final-snapshot identifier, so there is none to check.
//! - **RDS limits** on every name checked: letters, digits and hyphens, starting with a letter,
//!   no `--`, no trailing `-`; at most 63 characters for a database, 255 for a snapshot.
//!
//! `<timestamp>` is the UTC second the data was snapshotted, `YYYYMMDD-HHMMSS` as Switchyard
//! writes it (`xy-0146-prod-20261125-222526`); the hyphenless `YYYYMMDDHHMMSS` of the contract's
//! comments is accepted too. It must be a real date and time.
//!
//! Settings: `{"environments": ["dev", "qa", "test", "staging", "prod"]}` (the default).

use serde::Deserialize;
use switchyard_policy_kit::prelude::*;

pub struct Naming;

impl Policy for Naming {
    const NAME: &'static str = "naming";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const STEPS: &'static [Step] = Step::ALL;
    const SETTINGS_SCHEMA: &'static str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "naming settings",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "environments": {
      "description": "The environments a namespace may end in.",
      "type": "array",
      "items": {"type": "string", "minLength": 1},
      "minItems": 1,
      "default": ["dev", "qa", "test", "staging", "prod"]
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

export_policy!(Naming);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default = "default_environments")]
    pub environments: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            environments: default_environments(),
        }
    }
}

fn default_environments() -> Vec<String> {
    ["dev", "qa", "test", "staging", "prod"]
        .map(str::to_owned)
        .to_vec()
}

/// The decision for `ctx` under `settings`.
pub fn check(ctx: &Context, settings: &Settings) -> Decision {
    let mut checks = Checks::new();
    match parse_namespace(&ctx.namespace, &settings.environments) {
        Err(why) => {
            checks.deny(format!(
                "namespace {:?} does not follow <customer>-<projectnum>-<env>: {why}",
                ctx.namespace
            ));
        }
        Ok((customer, project, environment)) => {
            for (field, given, want) in [
                ("customer", &ctx.customer, customer),
                ("project", &ctx.project, project),
                ("environment", &ctx.environment, environment),
            ] {
                checks.deny_if(given != want, || {
                    format!(
                        "context {field} {given:?} disagrees with namespace {:?} (its {field} is {want:?})",
                        ctx.namespace
                    )
                });
            }
        }
    }
    if let Some(source) = &ctx.source_namespace
        && let Err(why) = parse_namespace(source, &settings.environments)
    {
        checks.deny(format!(
            "source namespace {source:?} does not follow <customer>-<projectnum>-<env>: {why}"
        ));
    }
    if let Some(db) = &ctx.target_db {
        check_name(
            &mut checks,
            "target database",
            &db.id,
            &ctx.namespace,
            DB_MAX,
        );
    }
    if let Some(pointer) = &ctx.new_pointer {
        check_name(&mut checks, "new pointer", pointer, &ctx.namespace, DB_MAX);
    }
    if let Some(snapshot) = ctx.snapshot.as_ref().filter(|s| s.taken_by_this_execution) {
        let source = ctx.source_namespace.as_deref().unwrap_or(&ctx.namespace);
        check_name(&mut checks, "snapshot", &snapshot.id, source, SNAPSHOT_MAX);
    }
    checks.finish()
}

const DB_MAX: usize = 63;
const SNAPSHOT_MAX: usize = 255;

/// `(customer, project, environment)` of a namespace that follows the pattern, else why not.
pub fn parse_namespace<'a>(
    text: &'a str,
    environments: &[String],
) -> Result<(&'a str, &'a str, &'a str), String> {
    let mut parts = text.splitn(3, '-');
    let (Some(customer), Some(project), Some(environment)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err("it must have three parts separated by '-'".to_owned());
    };
    if !(2..=10).contains(&customer.len()) || !customer.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(format!(
            "the customer {customer:?} must be 2-10 lowercase letters"
        ));
    }
    if project.len() != 4 || !project.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("the project number {project:?} must be 4 digits"));
    }
    if !environments.iter().any(|env| env == environment) {
        return Err(format!(
            "the environment {environment:?} is not one of {}",
            environments.join(", ")
        ));
    }
    Ok((customer, project, environment))
}

/// Denies unless `name` is `<prefix>-<timestamp>` and within RDS's limits.
fn check_name(checks: &mut Checks, what: &str, name: &str, prefix: &str, max: usize) {
    let timestamp = name
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .filter(|ts| valid_timestamp(ts));
    checks.deny_if(timestamp.is_none(), || {
        format!("{what} {name:?} is not named {prefix}-<YYYYMMDD-HHMMSS>")
    });
    if let Some(why) = rds_problem(name, max) {
        checks.deny(format!(
            "{what} {name:?} is not a valid RDS identifier: {why}"
        ));
    }
}

/// `YYYYMMDD-HHMMSS` or `YYYYMMDDHHMMSS`, a real UTC date and time.
pub fn valid_timestamp(ts: &str) -> bool {
    let digits: String = match ts.len() {
        15 if ts.as_bytes()[8] == b'-' => format!("{}{}", &ts[..8], &ts[9..]),
        14 => ts.to_owned(),
        _ => return false,
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let num = |from: usize, to: usize| digits[from..to].parse::<u32>().unwrap_or(u32::MAX);
    switchyard_policy_kit::valid_date(i64::from(num(0, 4)), num(4, 6), num(6, 8))
        && num(8, 10) < 24
        && num(10, 12) < 60
        && num(12, 14) < 60
}

/// What makes `id` an invalid RDS identifier of at most `max` characters, if anything.
pub fn rds_problem(id: &str, max: usize) -> Option<String> {
    if id.is_empty() {
        Some("it is empty".to_owned())
    } else if id.len() > max {
        Some(format!(
            "it is {} characters long, over RDS's {max}",
            id.len()
        ))
    } else if !id.starts_with(|c: char| c.is_ascii_alphabetic()) {
        Some("it must start with a letter".to_owned())
    } else if !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        Some("it may contain only letters, digits and hyphens".to_owned())
    } else if id.contains("--") {
        Some("it must not contain two consecutive hyphens".to_owned())
    } else if id.ends_with('-') {
        Some("it must not end with a hyphen".to_owned())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces() {
        let envs = Settings::default().environments;
        assert_eq!(
            parse_namespace("xy-0146-prod", &envs),
            Ok(("xy", "0146", "prod"))
        );
        assert!(parse_namespace("abcdefghij-0001-dev", &envs).is_ok());
        for bad in [
            "",
            "xy",
            "xy-0146",
            "x-0146-prod",
            "abcdefghijk-0146-prod",
            "x1-0146-prod",
            "Xy-0146-prod",
            "xy-146-prod",
            "xy-01460-prod",
            "xy-0146-uat",
            "xy-0146-prod-2",
        ] {
            assert!(parse_namespace(bad, &envs).is_err(), "{bad}");
        }
        let custom = vec!["pre-prod".to_owned()];
        assert_eq!(
            parse_namespace("xy-0146-pre-prod", &custom),
            Ok(("xy", "0146", "pre-prod"))
        );
    }

    #[test]
    fn timestamps() {
        assert!(valid_timestamp("20261125-222526"));
        assert!(valid_timestamp("20261125222526"));
        assert!(valid_timestamp("20240229-000000"));
        for bad in [
            "",
            "2026112522252",
            "20261125_222526",
            "20261325-222526",
            "20250229-000000",
            "20261125-242526",
            "20261125-226026",
            "2026112-5222526",
            "2026112522252x",
        ] {
            assert!(!valid_timestamp(bad), "{bad}");
        }
    }

    #[test]
    fn rds_identifiers() {
        assert_eq!(rds_problem("xy-0146-prod-20261125-222526", 63), None);
        assert!(
            rds_problem(&"a".repeat(64), 63)
                .unwrap()
                .contains("64 characters")
        );
        assert!(rds_problem(&"a".repeat(64), 255).is_none());
        assert!(rds_problem("1ab", 63).unwrap().contains("letter"));
        assert!(rds_problem("a_b", 63).unwrap().contains("only"));
        assert!(rds_problem("a--b", 63).unwrap().contains("consecutive"));
        assert!(rds_problem("ab-", 63).unwrap().contains("end"));
        assert!(rds_problem("", 63).is_some());
    }

    #[test]
    fn fixtures() {
        switchyard_policy_kit::testing::check_fixtures::<Naming>(include_str!("../fixtures.json"));
    }
}
