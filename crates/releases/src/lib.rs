//! The release catalog and the upgrade planner.
//!
//! A tenant may run any release and moves at its own pace, so an upgrade can start anywhere. To
//! keep the number of upgrade paths that must work to a handful, every upgrade follows one
//! linearized path (the database-per-tenant article's rule):
//!
//! 1. up to the latest patch of the tenant's own `major.minor` line;
//! 2. then to the next `.0` (the main line enters every line at its `.0`);
//! 3. then along the main line of `.0` releases up to the target's line;
//! 4. then the target line's patches up to the target.
//!
//! A target in the tenant's own line is just that line's patches up to it. With releases
//! `1.0.0 1.0.1 1.0.2 1.1.0 1.1.1 1.1.2 1.2.0 1.2.1 2.0.0 2.0.1`, 1.0.1 → 2.0.1 is
//! `1.0.2 → 1.1.0 → 1.2.0 → 2.0.0 → 2.0.1`, and 1.0.1 → 1.2.0 goes through 1.1.x.
//!
//! Each hop runs its release's migration on the database, in order. A schema change released
//! on several lines (a fix made in 2.0.1 and backported to 1.1.2 and 1.2.1) is one change:
//! the plan says where a tenant's schema already got it, so its later copies must find it there
//! (migrations are idempotent, and `switchyard release verify` proves it on a real database).
//!
//! No I/O here: the control plane and the `upgrade-path` policy plugin (a WebAssembly
//! component) plan with this same code, so the check and the plan cannot disagree.

use std::collections::BTreeMap;
use std::fmt;

pub use semver::Version;
use serde::{Deserialize, Serialize};

/// Minutes a migration is expected to take when its release does not say.
pub const DEFAULT_MIGRATION_MINUTES: u32 = 5;

/// One release of the application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    /// `major.minor.patch`, without pre-release or build parts.
    pub version: Version,
    /// The container image of this release (a full reference).
    pub image: String,
    /// The container command that migrates a database to this release's schema, run with this
    /// release's image; empty when the release changes no schema.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub migration: Vec<String>,
    /// The release whose schema change this one carries to an older line (a backport): a fix
    /// made in 2.0.1 and backported to 1.1.2 names `2.0.1` in 1.1.2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backport_of: Option<Version>,
    /// How long the migration is expected to take (the upgrade's downtime estimate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration_minutes: Option<u32>,
}

impl Release {
    /// The `major.minor` line.
    pub fn line(&self) -> Line {
        Line::of(&self.version)
    }

    /// The release that first made this release's schema change: itself, or the original of
    /// a backport.
    pub fn change(&self) -> &Version {
        self.backport_of.as_ref().unwrap_or(&self.version)
    }
}

/// A `major.minor` release line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Line {
    pub major: u64,
    pub minor: u64,
}

impl Line {
    pub fn of(version: &Version) -> Line {
        Line {
            major: version.major,
            minor: version.minor,
        }
    }
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// What is wrong with a catalog, each problem with its own name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogProblem {
    /// Two entries for one version.
    DuplicateRelease(Version),
    /// A version with a pre-release or build part: the path orders plain releases.
    NotARelease(Version),
    /// A line without its `.0`: the main line enters every line there, so the lines could not
    /// be put in one order.
    LineWithoutZero { line: Line, first: Version },
    /// A backport must name a release of a later line.
    BackportPointsForward {
        release: Version,
        backport_of: Version,
    },
    /// A backport names a release the catalog does not have.
    BackportOfUnknown {
        release: Version,
        backport_of: Version,
    },
    /// A backport names another backport rather than the original change.
    BackportOfBackport {
        release: Version,
        backport_of: Version,
        original: Version,
    },
    /// An image reference that is empty or has whitespace.
    BadImage { release: Version, image: String },
    /// A migration command with an empty argument.
    BadMigration { release: Version },
}

impl CatalogProblem {
    /// The problem's name, as the error message and `--output json` show it.
    pub fn name(&self) -> &'static str {
        match self {
            CatalogProblem::DuplicateRelease(_) => "DuplicateRelease",
            CatalogProblem::NotARelease(_) => "NotARelease",
            CatalogProblem::LineWithoutZero { .. } => "UnorderedReleaseLines",
            CatalogProblem::BackportPointsForward { .. } => "BackportPointsForward",
            CatalogProblem::BackportOfUnknown { .. } => "BackportOfUnknownRelease",
            CatalogProblem::BackportOfBackport { .. } => "BackportOfBackport",
            CatalogProblem::BadImage { .. } => "InvalidImage",
            CatalogProblem::BadMigration { .. } => "InvalidMigration",
        }
    }
}

impl fmt::Display for CatalogProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.name())?;
        match self {
            CatalogProblem::DuplicateRelease(v) => write!(f, "release {v} is listed twice"),
            CatalogProblem::NotARelease(v) => write!(
                f,
                "{v} has a pre-release or build part; the catalog holds releases only"
            ),
            CatalogProblem::LineWithoutZero { line, first } => write!(
                f,
                "line {line} starts at {first}, not {line}.0: upgrades enter a line at its .0"
            ),
            CatalogProblem::BackportPointsForward {
                release,
                backport_of,
            } => write!(
                f,
                "{release} is a backport of {backport_of}, which is not in a later line"
            ),
            CatalogProblem::BackportOfUnknown {
                release,
                backport_of,
            } => write!(
                f,
                "{release} is a backport of {backport_of}, which is not in the catalog"
            ),
            CatalogProblem::BackportOfBackport {
                release,
                backport_of,
                original,
            } => write!(
                f,
                "{release} is a backport of {backport_of}, itself a backport of {original}: name {original}"
            ),
            CatalogProblem::BadImage { release, image } => {
                write!(
                    f,
                    "release {release} has image {image:?}, not an image reference"
                )
            }
            CatalogProblem::BadMigration { release } => {
                write!(
                    f,
                    "release {release} has an empty argument in its migration command"
                )
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("invalid release catalog: {}", list(.0))]
    Invalid(Vec<CatalogProblem>),
    #[error("invalid release catalog: {0}")]
    Malformed(String),
}

fn list(problems: &[CatalogProblem]) -> String {
    let texts: Vec<String> = problems.iter().map(ToString::to_string).collect();
    texts.join("; ")
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("version {version} is not in the release catalog")]
    UnknownRelease { version: String },
    #[error("{to} is older than {from}: an upgrade never goes back")]
    Downgrade { from: Version, to: Version },
}

/// Reads `1.2.0`, or `v1.2.0` (an image tag).
pub fn parse_version(text: &str) -> Result<Version, PlanError> {
    let trimmed = text.trim();
    Version::parse(trimmed.strip_prefix('v').unwrap_or(trimmed)).map_err(|_| {
        PlanError::UnknownRelease {
            version: text.to_owned(),
        }
    })
}

/// Every release, validated and in version order: the single source of truth the planner, the
/// policy and the deploy machine read. Its JSON form is `{"releases": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReleaseCatalog {
    releases: Vec<Release>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogDocument {
    releases: Vec<Release>,
}

impl<'de> Deserialize<'de> for ReleaseCatalog {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let document = CatalogDocument::deserialize(deserializer)?;
        ReleaseCatalog::new(document.releases).map_err(serde::de::Error::custom)
    }
}

impl ReleaseCatalog {
    /// Validates `releases` (in any order), naming every problem at once.
    pub fn new(mut releases: Vec<Release>) -> Result<Self, CatalogError> {
        releases.sort_by(|a, b| a.version.cmp(&b.version));
        let mut problems = Vec::new();
        for pair in releases.windows(2) {
            if pair[0].version == pair[1].version {
                problems.push(CatalogProblem::DuplicateRelease(pair[0].version.clone()));
            }
        }
        let by_version: BTreeMap<&Version, &Release> =
            releases.iter().map(|r| (&r.version, r)).collect();
        let mut lines: BTreeMap<Line, &Version> = BTreeMap::new();
        for release in &releases {
            let version = &release.version;
            if !version.pre.is_empty() || !version.build.is_empty() {
                problems.push(CatalogProblem::NotARelease(version.clone()));
            }
            lines.entry(release.line()).or_insert(version);
            if release.image.trim().is_empty() || release.image.contains(char::is_whitespace) {
                problems.push(CatalogProblem::BadImage {
                    release: version.clone(),
                    image: release.image.clone(),
                });
            }
            if release.migration.iter().any(|arg| arg.is_empty()) {
                problems.push(CatalogProblem::BadMigration {
                    release: version.clone(),
                });
            }
            if let Some(original) = &release.backport_of {
                match by_version.get(original) {
                    None => problems.push(CatalogProblem::BackportOfUnknown {
                        release: version.clone(),
                        backport_of: original.clone(),
                    }),
                    Some(target) if Line::of(original) <= release.line() => {
                        let _ = target;
                        problems.push(CatalogProblem::BackportPointsForward {
                            release: version.clone(),
                            backport_of: original.clone(),
                        });
                    }
                    Some(target) => {
                        if let Some(deeper) = &target.backport_of {
                            problems.push(CatalogProblem::BackportOfBackport {
                                release: version.clone(),
                                backport_of: original.clone(),
                                original: deeper.clone(),
                            });
                        }
                    }
                }
            }
        }
        for (line, first) in lines {
            if first.patch != 0 {
                problems.push(CatalogProblem::LineWithoutZero {
                    line,
                    first: first.clone(),
                });
            }
        }
        if problems.is_empty() {
            Ok(ReleaseCatalog { releases })
        } else {
            Err(CatalogError::Invalid(problems))
        }
    }

    pub fn from_json(text: &str) -> Result<Self, CatalogError> {
        let document: CatalogDocument =
            serde_json::from_str(text).map_err(|err| CatalogError::Malformed(err.to_string()))?;
        ReleaseCatalog::new(document.releases)
    }

    pub fn to_json(&self) -> String {
        // A catalog is strings and numbers: it always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The catalog with `release` added (or replacing the entry of its version), validated.
    pub fn with(&self, release: Release) -> Result<Self, CatalogError> {
        let mut releases: Vec<Release> = self
            .releases
            .iter()
            .filter(|r| r.version != release.version)
            .cloned()
            .collect();
        releases.push(release);
        ReleaseCatalog::new(releases)
    }

    pub fn releases(&self) -> &[Release] {
        &self.releases
    }

    pub fn is_empty(&self) -> bool {
        self.releases.is_empty()
    }

    pub fn get(&self, version: &Version) -> Option<&Release> {
        self.releases
            .binary_search_by(|r| r.version.cmp(version))
            .ok()
            .and_then(|i| self.releases.get(i))
    }

    /// The release of a version given as text (`1.2.0` or `v1.2.0`).
    pub fn find(&self, text: &str) -> Result<&Release, PlanError> {
        let version = parse_version(text)?;
        self.get(&version).ok_or(PlanError::UnknownRelease {
            version: text.to_owned(),
        })
    }

    pub fn latest(&self) -> Option<&Release> {
        self.releases.last()
    }

    /// The main line: every line's `.0`, in order.
    pub fn main_line(&self) -> impl Iterator<Item = &Release> {
        self.releases.iter().filter(|r| r.version.patch == 0)
    }

    /// The one path from `from` to `to`, each hop with the migration it runs.
    pub fn plan(&self, from: &str, to: &str) -> Result<UpgradePlan, PlanError> {
        let from = self.find(from)?.version.clone();
        let to = self.find(to)?.version.clone();
        if to < from {
            return Err(PlanError::Downgrade { from, to });
        }
        let path = self.path(&from, &to);
        // What the schema at `from` already has: every change on the path the catalog's first
        // release takes to it.
        let mut applied: BTreeMap<Version, Version> = BTreeMap::new();
        if let Some(first) = self.releases.first() {
            for release in std::iter::once(first).chain(self.path(&first.version, &from)) {
                applied
                    .entry(release.change().clone())
                    .or_insert_with(|| release.version.clone());
            }
        }
        let hops = path
            .into_iter()
            .map(|release| {
                let already_applied_by = applied.get(release.change()).cloned();
                applied
                    .entry(release.change().clone())
                    .or_insert_with(|| release.version.clone());
                Hop {
                    version: release.version.clone(),
                    image: release.image.clone(),
                    migration: release.migration.clone(),
                    backport_of: release.backport_of.clone(),
                    already_applied_by,
                    migration_minutes: release
                        .migration_minutes
                        .unwrap_or(DEFAULT_MIGRATION_MINUTES),
                }
            })
            .collect();
        Ok(UpgradePlan { from, to, hops })
    }

    /// The releases after `from` up to `to` on the linearized path; `from <= to`, both known.
    fn path(&self, from: &Version, to: &Version) -> Vec<&Release> {
        let (from_line, to_line) = (Line::of(from), Line::of(to));
        self.releases
            .iter()
            .filter(|r| {
                let (v, line) = (&r.version, r.line());
                if v <= from || v > to {
                    return false;
                }
                if from_line == to_line {
                    return true;
                }
                // The rest of the own line, the main line in between, the target line's
                // patches (its `.0` is the main line's).
                line == from_line || (line <= to_line && v.patch == 0) || line == to_line
            })
            .collect()
    }
}

/// One step of an upgrade: the release it reaches and the migration that gets the schema there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hop {
    pub version: Version,
    pub image: String,
    /// Empty: the release changes no schema, the hop runs nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub migration: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backport_of: Option<Version>,
    /// The release whose migration already made this hop's schema change on this path (or on
    /// the way to the starting version): this migration must find the change there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub already_applied_by: Option<Version>,
    pub migration_minutes: u32,
}

impl Hop {
    pub fn migrates(&self) -> bool {
        !self.migration.is_empty()
    }
}

/// The path from one release to a later one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpgradePlan {
    pub from: Version,
    pub to: Version,
    pub hops: Vec<Hop>,
}

impl UpgradePlan {
    /// `1.0.1 → 1.0.2 → 1.1.0`.
    pub fn describe(&self) -> String {
        let mut text = self.from.to_string();
        for hop in &self.hops {
            text.push_str(" → ");
            text.push_str(&hop.version.to_string());
        }
        text
    }

    /// The hops that run a migration.
    pub fn migrations(&self) -> impl Iterator<Item = &Hop> {
        self.hops.iter().filter(|hop| hop.migrates())
    }

    pub fn migration_minutes(&self) -> u32 {
        self.migrations().map(|hop| hop.migration_minutes).sum()
    }
}

#[cfg(test)]
mod tests;
