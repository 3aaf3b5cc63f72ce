//! # upgrade-path
//!
//! Checks `deploy-service`: an application version change (`current-version` →
//! `target-version`) follows the linearized upgrade path through the known `releases`.
//!
//! The path from a version is hop by hop:
//! - if a newer patch exists in the version's `major.minor` line, the next hop is the latest
//!   patch of that line;
//! - else the latest patch of the next minor line of the same major;
//! - else, when the major line ends, the latest patch of the next major's first minor line.
//!
//! With releases `1.0.0 1.0.1 1.0.2 1.1.0 1.1.1 1.2.0 2.0.0`, the path from 1.0.1 is
//! `1.0.1 → 1.0.2 → 1.1.1 → 1.2.0 → 2.0.0`.
//!
//! - **Allowed**: the target is the next hop, or equals the current version (no change).
//! - **Skip**: denied, with the whole path from the current version in the reason.
//! - **Downgrade**: denied, unless `allow_downgrade` (then allowed with a warning).
//! - **Unknown version** (not in `releases`) or one that is not semver: denied.
//! - **Missing version** (`current-version` or `target-version` not in the context): allowed
//!   with a warning; there is nothing to check.
//!
//! Versions may carry a leading `v` (`v1.2.0`, an image tag). Settings:
//! `{"releases": ["1.0.0", "1.0.1", ...], "allow_downgrade": false}`; `releases` is required.

use semver::Version;
use serde::Deserialize;
use switchyard_policy_kit::prelude::*;

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
  "required": ["releases"],
  "properties": {
    "releases": {
      "description": "Every released application version (semver, optionally with a leading v), in any order.",
      "type": "array",
      "items": {"type": "string", "pattern": "^v?(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)([-+].*)?$"}
    },
    "allow_downgrade": {
      "description": "Allow moving to an older known release (with a warning).",
      "type": "boolean", "default": false
    }
  }
}"#;

    fn evaluate(ctx: &Context) -> Decision {
        let settings = match ctx.settings::<Settings>() {
            Ok(settings) => settings,
            Err(reason) => return Decision::deny(reason),
        };
        let Some(releases) = settings.releases else {
            return Decision::deny(
                "setting `releases` is required: every released application version",
            );
        };
        match Releases::parse(&releases) {
            Ok(releases) => check(ctx, &releases, settings.allow_downgrade),
            Err(reason) => Decision::deny(reason),
        }
    }
}

export_policy!(UpgradePath);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    releases: Option<Vec<String>>,
    #[serde(default)]
    allow_downgrade: bool,
}

/// Reads `1.2.0` or `v1.2.0`.
pub fn parse_version(text: &str) -> Result<Version, semver::Error> {
    let text = text.trim();
    Version::parse(text.strip_prefix('v').unwrap_or(text))
}

/// The known releases, sorted, without duplicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Releases(Vec<Version>);

impl Releases {
    /// Parses the `releases` setting; the error names the bad entry.
    pub fn parse(texts: &[String]) -> Result<Releases, String> {
        let mut versions = Vec::with_capacity(texts.len());
        for (i, text) in texts.iter().enumerate() {
            match parse_version(text) {
                Ok(version) => versions.push(version),
                Err(err) => {
                    return Err(format!(
                        "invalid setting `releases[{i}]`: {text:?} is not a semver version ({err})"
                    ));
                }
            }
        }
        versions.sort();
        versions.dedup();
        Ok(Releases(versions))
    }

    pub fn contains(&self, version: &Version) -> bool {
        self.0.binary_search(version).is_ok()
    }

    /// The latest release of the line `major.minor`.
    fn latest_of(&self, major: u64, minor: u64) -> Option<&Version> {
        self.0
            .iter()
            .rev()
            .find(|v| v.major == major && v.minor == minor)
    }

    /// The next hop from `from` on the linearized path, if any.
    pub fn next_hop(&self, from: &Version) -> Option<&Version> {
        let newer = self.0.iter().filter(|v| *v > from);
        let same_line = |v: &&Version| v.major == from.major && v.minor == from.minor;
        if newer.clone().any(|v| same_line(&v)) {
            return self.latest_of(from.major, from.minor);
        }
        let next_minor = newer
            .clone()
            .filter(|v| v.major == from.major && v.minor > from.minor)
            .map(|v| v.minor)
            .min();
        if let Some(minor) = next_minor {
            return self.latest_of(from.major, minor);
        }
        let next_major = newer
            .clone()
            .map(|v| v.major)
            .filter(|m| *m > from.major)
            .min()?;
        let first_minor = self
            .0
            .iter()
            .filter(|v| v.major == next_major)
            .map(|v| v.minor)
            .min()?;
        self.latest_of(next_major, first_minor)
    }

    /// The path from `from` to the end: `from`, then each next hop.
    pub fn path(&self, from: &Version) -> Vec<&Version> {
        let mut path = Vec::new();
        let mut at = from;
        while let Some(next) = self.next_hop(at) {
            path.push(next);
            at = next;
        }
        path
    }

    /// `1.0.1 → 1.0.2 → 1.1.1`.
    pub fn describe_path(&self, from: &Version) -> String {
        let mut text = from.to_string();
        for hop in self.path(from) {
            text.push_str(" → ");
            text.push_str(&hop.to_string());
        }
        text
    }

    fn list(&self) -> String {
        if self.0.is_empty() {
            return "none".to_owned();
        }
        let all: Vec<String> = self.0.iter().map(Version::to_string).collect();
        all.join(", ")
    }
}

/// The decision for `ctx` given the releases.
pub fn check(ctx: &Context, releases: &Releases, allow_downgrade: bool) -> Decision {
    let ns = &ctx.namespace;
    let (Some(current_text), Some(target_text)) = (&ctx.current_version, &ctx.target_version)
    else {
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
    let mut known = |which: &str, text: &str| match parse_version(text) {
        Err(err) => {
            checks.deny(format!(
                "{which} version {text:?} of {ns} is not a semver version ({err})"
            ));
            None
        }
        Ok(version) if !releases.contains(&version) => {
            checks.deny(format!(
                "{which} version {version} of {ns} is not a known release (releases: {})",
                releases.list()
            ));
            None
        }
        Ok(version) => Some(version),
    };
    let current = known("current", current_text);
    let target = known("target", target_text);
    let (Some(current), Some(target)) = (current, target) else {
        return checks.finish();
    };
    if target == current {
        return Decision::allow();
    }
    if target < current {
        if allow_downgrade {
            return Decision::allow().with_warning(format!(
                "{ns} is downgraded from {current} to {target} (allow_downgrade is set)"
            ));
        }
        return Decision::deny(format!(
            "{ns} would be downgraded from {current} to {target}; set allow_downgrade to permit it"
        ));
    }
    match releases.next_hop(&current) {
        Some(next) if *next == target => Decision::allow(),
        Some(next) => Decision::deny(format!(
            "upgrading {ns} from {current} to {target} leaves the upgrade path {}: the next version must be {next}",
            releases.describe_path(&current)
        )),
        None => Decision::deny(format!(
            "{ns} runs {current}, the last release on the upgrade path; {target} is not after it"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn releases(list: &[&str]) -> Releases {
        Releases::parse(&list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).unwrap()
    }

    fn v(text: &str) -> Version {
        parse_version(text).unwrap()
    }

    #[test]
    fn the_linearized_path() {
        let r = releases(&[
            "2.0.0", "1.0.0", "1.0.1", "1.0.2", "1.1.0", "1.1.1", "1.2.0", "1.0.1",
        ]);
        assert_eq!(
            r.describe_path(&v("1.0.1")),
            "1.0.1 → 1.0.2 → 1.1.1 → 1.2.0 → 2.0.0"
        );
        assert_eq!(
            r.describe_path(&v("1.0.0")),
            "1.0.0 → 1.0.2 → 1.1.1 → 1.2.0 → 2.0.0"
        );
        assert_eq!(
            r.describe_path(&v("1.1.0")),
            "1.1.0 → 1.1.1 → 1.2.0 → 2.0.0"
        );
        assert_eq!(r.describe_path(&v("2.0.0")), "2.0.0");
    }

    #[test]
    fn majors_skip_missing_minors_and_start_at_their_first_line() {
        let r = releases(&[
            "1.0.0",
            "1.3.0",
            "1.3.4",
            "2.1.0",
            "2.1.5",
            "2.2.0",
            "3.0.0-rc.1",
            "3.0.0",
        ]);
        assert_eq!(
            r.describe_path(&v("1.0.0")),
            "1.0.0 → 1.3.4 → 2.1.5 → 2.2.0 → 3.0.0"
        );
        assert_eq!(r.next_hop(&v("3.0.0-rc.1")), Some(&v("3.0.0")));
    }

    #[test]
    fn leading_v_and_bad_entries() {
        assert_eq!(parse_version("v1.2.3").unwrap(), v("1.2.3"));
        let err = Releases::parse(&["1.0.0".into(), "1.x".into()]).unwrap_err();
        assert!(
            err.starts_with("invalid setting `releases[1]`: \"1.x\""),
            "{err}"
        );
    }

    #[test]
    fn fixtures() {
        switchyard_policy_kit::testing::check_fixtures::<UpgradePath>(include_str!(
            "../fixtures.json"
        ));
    }
}
