//! Table tests for a policy, natively: the same `fixtures.json` that
//! `switchyard policy test` runs against the built component.
//!
//! ```json
//! {"plugin": "snapshot-freshness",
//!  "cases": [
//!    {"name": "a prod restore from a 3-day-old snapshot is denied",
//!     "context": {"step": "create-database", "namespace": "xy-0146-prod", "...": "...",
//!                 "settings": {"max_age_hours": {"prod": 24}}},
//!     "expect": "deny",
//!     "reasons": ["substring that must appear in some reason"],
//!     "warnings": ["substring that must appear in some warning"]}]}
//! ```
//!
//! `context` is the JSON form of `switchyard-core`'s `PolicyContext` (every field optional);
//! `expect` is `allow`, `deny`, or `not-checked` (the step is not among the policy's `STEPS`,
//! so the host never asks it); `reasons` and `warnings` are optional.

use serde::Deserialize;

use crate::{Context, Decision, Policy};

/// A fixtures file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixtures {
    pub plugin: String,
    pub cases: Vec<Case>,
}

/// One case: a context and what the policy must say about it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub context: Context,
    pub expect: Expect,
    /// Each must be a substring of some deny reason.
    #[serde(default)]
    pub reasons: Vec<String>,
    /// Each must be a substring of some warning.
    #[serde(default)]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expect {
    Allow,
    Deny,
    /// The policy does not check this step: the host never asks it.
    NotChecked,
}

impl Case {
    /// What is wrong with `decision` for this case, if anything.
    pub fn mismatch(&self, decision: &Decision) -> Option<String> {
        let verdict_ok = match self.expect {
            Expect::Allow => decision.is_allow(),
            Expect::Deny => !decision.is_allow(),
            Expect::NotChecked => false,
        };
        let missing_reason = self.reasons.iter().find(|want| {
            !decision
                .reasons()
                .iter()
                .any(|got| got.contains(want.as_str()))
        });
        let missing_warning = self.warnings.iter().find(|want| {
            !decision
                .warnings
                .iter()
                .any(|got| got.contains(want.as_str()))
        });
        if verdict_ok && missing_reason.is_none() && missing_warning.is_none() {
            return None;
        }
        let mut why = format!("case {:?}: expected {:?}", self.name, self.expect);
        if let Some(want) = missing_reason {
            why.push_str(&format!(" with a reason containing {want:?}"));
        }
        if let Some(want) = missing_warning {
            why.push_str(&format!(" with a warning containing {want:?}"));
        }
        why.push_str(&format!(
            ", got {} reasons {:?} warnings {:?}",
            if decision.is_allow() { "allow" } else { "deny" },
            decision.reasons(),
            decision.warnings
        ));
        Some(why)
    }
}

/// Runs every case of `fixtures_json` through [`crate::decide`] and panics listing every
/// case that fails. Also checks that the fixtures name this plugin and that its settings
/// schema is a JSON object.
pub fn check_fixtures<P: Policy>(fixtures_json: &str) {
    let fixtures: Fixtures = match serde_json::from_str(fixtures_json) {
        Ok(fixtures) => fixtures,
        Err(err) => panic!("fixtures do not parse: {err}"),
    };
    let mut failures = Vec::new();
    if fixtures.plugin != P::NAME {
        failures.push(format!(
            "fixtures are for {:?}, the policy is {:?}",
            fixtures.plugin,
            P::NAME
        ));
    }
    match serde_json::from_str::<serde_json::Value>(P::SETTINGS_SCHEMA) {
        Ok(serde_json::Value::Object(_)) => {}
        _ => failures.push("SETTINGS_SCHEMA is not a JSON object".to_owned()),
    }
    if fixtures.cases.is_empty() {
        failures.push("no cases".to_owned());
    }
    for case in &fixtures.cases {
        let checked = P::STEPS.contains(&case.context.step);
        if !checked {
            if case.expect != Expect::NotChecked {
                failures.push(format!(
                    "case {:?}: the policy does not check step {}; expect \"not-checked\"",
                    case.name, case.context.step
                ));
            }
            continue;
        }
        let decision = crate::decide::<P>(&case.context);
        failures.extend(case.mismatch(&decision));
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures failed:\n{}",
        failures.len(),
        fixtures.cases.len(),
        failures.join("\n")
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Checks, Step};

    struct OldSnapshots;

    impl Policy for OldSnapshots {
        const NAME: &'static str = "old";
        const VERSION: &'static str = "0.0.1";
        const STEPS: &'static [Step] = &[Step::CreateDatabase];

        fn evaluate(ctx: &Context) -> Decision {
            let mut checks = Checks::new();
            checks
                .deny_if(ctx.now > 100, || format!("now {} is late", ctx.now))
                .warn("always");
            checks.finish()
        }
    }

    const FIXTURES: &str = r#"{"plugin": "old", "cases": [
        {"name": "early", "context": {"now": 5}, "expect": "allow", "warnings": ["alw"]},
        {"name": "late", "context": {"now": 500}, "expect": "deny", "reasons": ["500 is late"]},
        {"name": "other step", "context": {"step": "cleanup", "now": 500}, "expect": "not-checked"}]}"#;

    #[test]
    fn passing_fixtures() {
        check_fixtures::<OldSnapshots>(FIXTURES);
    }

    #[test]
    #[should_panic(expected = "case \"late\": expected Allow, got deny")]
    fn a_wrong_verdict_fails() {
        check_fixtures::<OldSnapshots>(
            &FIXTURES.replace(r#""deny", "reasons": ["500 is late"]"#, r#""allow""#),
        );
    }

    #[test]
    #[should_panic(expected = "with a reason containing \"600\"")]
    fn a_missing_reason_fails() {
        check_fixtures::<OldSnapshots>(&FIXTURES.replace("500 is late", "600"));
    }

    #[test]
    #[should_panic(expected = "with a warning containing \"never\"")]
    fn a_missing_warning_fails() {
        check_fixtures::<OldSnapshots>(&FIXTURES.replace("alw", "never"));
    }

    #[test]
    #[should_panic(expected = "case \"other step\": the policy does not check step cleanup")]
    fn an_unchecked_step_must_expect_not_checked() {
        check_fixtures::<OldSnapshots>(&FIXTURES.replace("not-checked", "allow"));
    }

    #[test]
    #[should_panic(expected = "case \"early\": expected NotChecked")]
    fn not_checked_for_a_checked_step_fails() {
        check_fixtures::<OldSnapshots>(&FIXTURES.replacen(
            r#""allow", "warnings""#,
            r#""not-checked", "warnings""#,
            1,
        ));
    }

    #[test]
    #[should_panic(expected = "fixtures are for \"new\"")]
    fn fixtures_for_another_plugin_fail() {
        check_fixtures::<OldSnapshots>(
            &FIXTURES.replace(r#""plugin": "old""#, r#""plugin": "new""#),
        );
    }
}
