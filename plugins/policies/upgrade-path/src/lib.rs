//! # upgrade-path
//!
//! Checks `deploy-service`: an application version change (`current-version` →
//! `target-version`) is an upgrade the installation's release catalog can plan. It plans with
//! the same library as `switchyard plan` and the deploy machine's migrations
//! (`switchyard-releases`), from the same catalog, so the check and the plan never disagree.
//!
//! The catalog is not a setting a platform team writes here: Switchyard hands the installation's
//! catalog (`{root}/releases`) to every plugin whose settings schema declares a
//! `release_catalog` property, in that property.
//!
//! - **Allowed**: the target is the current version, or a later release: the path runs through
//!   the latest patch of the current line, the next `.0`s and the target line's patches.
//! - **Downgrade**: denied, unless `allow_downgrade` (then allowed with a warning).
//! - **Unknown version** (not in the catalog, or not semver): denied, listing the catalog.
//! - **Missing version** (`current-version` or `target-version` not in the context): allowed
//!   with a warning; there is nothing to check.
//! - **No catalog**: denied; the installation has no releases to check against.
//!
//! Versions may carry a leading `v` (`v1.2.0`, an image tag).

use serde::Deserialize;
use switchyard_policy_kit::prelude::*;
use switchyard_releases::{PlanError, ReleaseCatalog};

pub struct UpgradePath;

impl Policy for UpgradePath {
    const NAME: &'static str = "upgrade-path";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const STEPS: &'static [Step] = &[Step::DeployService];
    const SETTINGS_SCHEMA: &'static str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "upgrade-path settings",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "release_catalog": {
      "description": "Supplied by Switchyard: the installation's release catalog ({root}/releases), {\"releases\": [...]}.",
      "type": "object"
    },
    "allow_downgrade": {
      "description": "Allow moving to an older release (with a warning).",
      "type": "boolean", "default": false
    }
  }
}"#;

    fn evaluate(ctx: &Context) -> Decision {
        let settings = match ctx.settings::<Settings>() {
            Ok(settings) => settings,
            Err(reason) => return Decision::deny(reason),
        };
        let Some(catalog) = settings.release_catalog else {
            return Decision::deny(
                "the installation has no release catalog to check the version against: record releases with `switchyard release add`",
            );
        };
        check(ctx, &catalog, settings.allow_downgrade)
    }
}

export_policy!(UpgradePath);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    release_catalog: Option<ReleaseCatalog>,
    #[serde(default)]
    allow_downgrade: bool,
}

fn list(catalog: &ReleaseCatalog) -> String {
    let all: Vec<String> = catalog
        .releases()
        .iter()
        .map(|r| r.version.to_string())
        .collect();
    if all.is_empty() {
        "none".to_owned()
    } else {
        all.join(", ")
    }
}

/// The decision for `ctx` given the catalog.
pub fn check(ctx: &Context, catalog: &ReleaseCatalog, allow_downgrade: bool) -> Decision {
    let ns = &ctx.namespace;
    let (Some(current), Some(target)) = (&ctx.current_version, &ctx.target_version) else {
        let missing = match (&ctx.current_version, &ctx.target_version) {
            (None, None) => "neither the current nor the target version is known",
            (None, _) => "the current version is unknown",
            _ => "the target version is unknown",
        };
        return Decision::allow().with_warning(format!(
            "{ns}: {missing}, so the upgrade path was not checked"
        ));
    };
    let mut checks = Checks::new();
    let mut unknown = false;
    for (which, text) in [("current", current), ("target", target)] {
        if catalog.find(text).is_err() {
            unknown = true;
            checks.deny(format!(
                "{which} version {text:?} of {ns} is not a release of the catalog (releases: {})",
                list(catalog)
            ));
        }
    }
    if unknown {
        return checks.finish();
    }
    match catalog.plan(current, target) {
        Ok(_) => Decision::allow(),
        Err(PlanError::Downgrade { from, to }) if allow_downgrade => Decision::allow()
            .with_warning(format!(
                "{ns} is downgraded from {from} to {to} (allow_downgrade is set)"
            )),
        Err(PlanError::Downgrade { from, to }) => Decision::deny(format!(
            "{ns} would be downgraded from {from} to {to}; set allow_downgrade to permit it"
        )),
        Err(err) => Decision::deny(format!("{ns}: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures() {
        switchyard_policy_kit::testing::check_fixtures::<UpgradePath>(include_str!(
            "../fixtures.json"
        ));
    }
}
