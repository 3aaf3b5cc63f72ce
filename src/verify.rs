//! `switchyard release verify`: the catalog's migrations proven on a real PostgreSQL server.
//!
//! For every release T, the reference schema is the main line's: a fresh database taken from
//! the catalog's first release along the planner's path to T, each migration once. Then for
//! every earlier release A, a copy of the database at A takes the planner's path A → T with each
//! hop's migration run twice in a row, and its schema (`pg_dump --schema-only`) must equal T's
//! reference. A migration that is not idempotent fails its second run, or leaves a schema that
//! differs; a backport that does not find its change where the main line made it shows the same.
//!
//! Scratch databases (`switchyard_verify_<pid>_<n>`) are created on the given server and dropped
//! at the end, whatever happened. `psql` and `pg_dump` must be on PATH.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::{Command, Output};

use anyhow::{Context, bail};
use serde::Serialize;
use switchyard_core::upgrades::{ReleaseCatalog, Version};

#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// A server where scratch databases may be created and dropped.
    pub database_url: String,
    /// A shell command with `{version}` and `{database_url}`.
    pub run: String,
    /// Only the paths ending at these versions (empty: every release).
    pub targets: Vec<String>,
}

/// One planned path, applied and compared.
#[derive(Debug, Clone, Serialize)]
pub struct PathCheck {
    pub from: String,
    pub to: String,
    pub path: String,
    pub migrations: usize,
    /// Every hop's migration ran twice without an error.
    pub applied_twice: bool,
    /// The schema equals the main line's at `to`; `None` when the path did not get that far.
    pub schema_equal: Option<bool>,
    /// What went wrong: the failing run and the last lines it printed, or the first
    /// differing line of the schema.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The server, without any password.
    pub server: String,
    pub releases: usize,
    /// The main line's own runs, release by release: an error here fails the verification.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub reference_errors: BTreeMap<String, String>,
    pub paths: Vec<PathCheck>,
}

impl VerifyReport {
    pub fn passed(&self) -> bool {
        self.reference_errors.is_empty()
            && self
                .paths
                .iter()
                .all(|p| p.applied_twice && p.schema_equal == Some(true))
    }
}

/// Runs the verification on a blocking thread (it waits on `psql` and the migration runner).
pub async fn verify(
    catalog: &ReleaseCatalog,
    options: &VerifyOptions,
    progress: impl FnMut(String) + Send + 'static,
) -> anyhow::Result<VerifyReport> {
    let catalog = catalog.clone();
    let options = options.clone();
    tokio::task::spawn_blocking(move || verify_blocking(&catalog, &options, progress))
        .await
        .context("the verification thread ended abruptly")?
}

fn verify_blocking(
    catalog: &ReleaseCatalog,
    options: &VerifyOptions,
    mut progress: impl FnMut(String),
) -> anyhow::Result<VerifyReport> {
    for tool in ["psql", "pg_dump"] {
        let found = Command::new(tool).arg("--version").output();
        if !found.is_ok_and(|o| o.status.success()) {
            bail!("{tool} is not on PATH: release verify needs PostgreSQL's client programs");
        }
    }
    let Some(first) = catalog.releases().first() else {
        bail!("the release catalog is empty: nothing to verify");
    };
    let targets: Vec<Version> = if options.targets.is_empty() {
        catalog
            .releases()
            .iter()
            .map(|r| r.version.clone())
            .collect()
    } else {
        options
            .targets
            .iter()
            .map(|t| catalog.find(t).map(|r| r.version.clone()))
            .collect::<Result<_, _>>()?
    };
    let mut scratch = Scratch::new(&options.database_url)?;
    let result = (|| {
        let mut report = VerifyReport {
            server: redact(&options.database_url),
            releases: catalog.releases().len(),
            reference_errors: BTreeMap::new(),
            paths: Vec::new(),
        };
        // The main line: the database at each release, kept as the template its paths start
        // from, and its schema.
        let mut at: BTreeMap<Version, (String, String)> = BTreeMap::new();
        for release in catalog.releases() {
            let version = &release.version;
            let db = scratch.create(None)?;
            let mut versions = vec![first.version.clone()];
            if version != &first.version {
                let plan = catalog.plan(&first.version.to_string(), &version.to_string())?;
                versions.extend(plan.migrations().map(|hop| hop.version.clone()));
            }
            let applied = versions.iter().try_for_each(|v| {
                apply(options, &scratch.url(&db), v).map_err(|e| format!("{v}: {e}"))
            });
            match applied.and_then(|()| scratch.dump(&db).map_err(|e| e.to_string())) {
                Ok(schema) => {
                    at.insert(version.clone(), (db, schema));
                }
                Err(err) => {
                    progress(format!("main line to {version}: FAILED ({err})"));
                    report.reference_errors.insert(version.to_string(), err);
                }
            }
        }
        for to in &targets {
            let Some((_, reference)) = at.get(to) else {
                continue;
            };
            for from in catalog.releases().iter().map(|r| &r.version) {
                if from >= to {
                    continue;
                }
                let Some((template, _)) = at.get(from) else {
                    continue;
                };
                let plan = catalog.plan(&from.to_string(), &to.to_string())?;
                let mut check = PathCheck {
                    from: from.to_string(),
                    to: to.to_string(),
                    path: plan.describe(),
                    migrations: plan.migrations().count(),
                    applied_twice: true,
                    schema_equal: None,
                    error: None,
                };
                let db = scratch.create(Some(template))?;
                let url = scratch.url(&db);
                'hops: for hop in plan.migrations() {
                    for run in ["first", "second"] {
                        if let Err(err) = apply(options, &url, &hop.version) {
                            check.applied_twice = false;
                            check.error = Some(format!("{} ({run} run): {err}", hop.version));
                            break 'hops;
                        }
                    }
                }
                if check.applied_twice {
                    let schema = scratch.dump(&db)?;
                    let equal = &schema == reference;
                    check.schema_equal = Some(equal);
                    if !equal {
                        check.error = Some(first_difference(reference, &schema));
                    }
                }
                scratch.drop_now(&db);
                progress(format!(
                    "{:<40} {}",
                    check.path,
                    if check.error.is_none() {
                        "ok"
                    } else {
                        "FAILED"
                    }
                ));
                report.paths.push(check);
            }
        }
        Ok(report)
    })();
    scratch.drop_all();
    result
}

/// Runs the user's command for one release on one database.
fn apply(options: &VerifyOptions, url: &str, version: &Version) -> Result<(), String> {
    let command = options
        .run
        .replace("{version}", &shell_quote(&version.to_string()))
        .replace("{database_url}", &shell_quote(url));
    let output = Command::new("sh")
        .arg("-c")
        .arg(&command)
        .output()
        .map_err(|err| format!("cannot run `{command}`: {err}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("exit {}: {}", code(&output), tail(&output)))
    }
}

fn code(output: &Output) -> String {
    output
        .status
        .code()
        .map_or_else(|| "by signal".to_owned(), |c| c.to_string())
}

/// The last lines a failed command printed, for the report.
fn tail(output: &Output) -> String {
    let text = String::from_utf8_lossy(&output.stderr);
    let text = if text.trim().is_empty() {
        String::from_utf8_lossy(&output.stdout)
    } else {
        text
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(2)..].join(" / ")
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The first line where two schemas differ, as the report names it.
fn first_difference(reference: &str, schema: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (reference.lines().collect(), schema.lines().collect());
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (a.get(i).copied(), b.get(i).copied());
        if x != y {
            return format!(
                "schema differs from the main line's at line {}: expected {:?}, found {:?}",
                i + 1,
                x.unwrap_or("(end)"),
                y.unwrap_or("(end)")
            );
        }
    }
    "schema differs from the main line's".to_owned()
}

/// `postgresql://user:secret@host/db` without the secret.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// The scratch databases of one verification, dropped at the end.
struct Scratch {
    admin_url: String,
    prefix: String,
    created: Vec<String>,
}

impl Scratch {
    fn new(admin_url: &str) -> anyhow::Result<Self> {
        let scratch = Scratch {
            admin_url: admin_url.to_owned(),
            prefix: format!("switchyard_verify_{}", std::process::id()),
            created: Vec::new(),
        };
        scratch
            .sql("SELECT 1")
            .with_context(|| format!("cannot reach {}", redact(admin_url)))?;
        Ok(scratch)
    }

    /// `admin_url` with its database replaced by `db`.
    fn url(&self, db: &str) -> String {
        let url = &self.admin_url;
        let authority = url.find("://").map_or(0, |i| i + 3);
        let query = url[authority..].find('?').map(|i| authority + i);
        let path = url[authority..query.unwrap_or(url.len())]
            .find('/')
            .map(|i| authority + i);
        let end = query.unwrap_or(url.len());
        let base = &url[..path.unwrap_or(end)];
        format!("{base}/{db}{}", &url[end..])
    }

    fn sql(&self, statement: &str) -> anyhow::Result<()> {
        let output = Command::new("psql")
            .args(["--no-psqlrc", "--quiet", "-v", "ON_ERROR_STOP=1"])
            .arg(&self.admin_url)
            .args(["-c", statement])
            .output()
            .context("running psql")?;
        if !output.status.success() {
            bail!("psql `{statement}`: {}", tail(&output));
        }
        Ok(())
    }

    fn create(&mut self, template: Option<&str>) -> anyhow::Result<String> {
        let name = format!("{}_{}", self.prefix, self.created.len());
        let template = template.unwrap_or("template0");
        self.sql(&format!("CREATE DATABASE {name} TEMPLATE {template}"))?;
        self.created.push(name.clone());
        Ok(name)
    }

    fn dump(&self, db: &str) -> anyhow::Result<String> {
        let output = Command::new("pg_dump")
            .args(["--schema-only", "--no-owner", "--no-privileges"])
            .arg(self.url(db))
            .output()
            .context("running pg_dump")?;
        if !output.status.success() {
            bail!("pg_dump of {db}: {}", tail(&output));
        }
        // Comments, and the random key of `\restrict` lines, differ from dump to dump.
        Ok(String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|line| {
                !line.starts_with("--")
                    && !line.starts_with("\\restrict")
                    && !line.starts_with("\\unrestrict")
            })
            .collect::<Vec<_>>()
            .join("\n"))
    }

    fn drop_now(&self, db: &str) {
        let _ = self.sql(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
    }

    fn drop_all(&mut self) {
        for db in std::mem::take(&mut self.created) {
            self.drop_now(&db);
        }
    }
}

/// The table the README shows: one row per path.
pub fn render(report: &VerifyReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "release verify on {}: {} releases, {} paths",
        report.server,
        report.releases,
        report.paths.len()
    );
    for (version, err) in &report.reference_errors {
        let _ = writeln!(out, "  main line to {version} FAILED: {err}");
    }
    let width = report
        .paths
        .iter()
        .map(|p| p.path.chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    let _ = writeln!(
        out,
        "  {:<width$} {:>10} {:>13} {:>12}",
        "path", "migrations", "applied twice", "schema equal"
    );
    for check in &report.paths {
        let equal = match check.schema_equal {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        };
        let _ = writeln!(
            out,
            "  {:<width$} {:>10} {:>13} {:>12}",
            check.path,
            check.migrations,
            if check.applied_twice { "yes" } else { "NO" },
            equal
        );
        if let Some(error) = &check.error {
            let _ = writeln!(out, "      {error}");
        }
    }
    let failed = report
        .paths
        .iter()
        .filter(|p| !p.applied_twice || p.schema_equal != Some(true))
        .count();
    let _ = writeln!(
        out,
        "{}",
        if report.passed() {
            "every path applies twice and reaches the main line's schema".to_owned()
        } else {
            format!(
                "{failed} paths FAILED, {} main-line releases FAILED",
                report.reference_errors.len()
            )
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_get_their_database_replaced_and_secrets_hidden() {
        let s = Scratch {
            admin_url: "postgresql://me:pw@127.0.0.1:5433/postgres?sslmode=disable".into(),
            prefix: String::new(),
            created: Vec::new(),
        };
        assert_eq!(
            s.url("x"),
            "postgresql://me:pw@127.0.0.1:5433/x?sslmode=disable"
        );
        let bare = Scratch {
            admin_url: "postgresql://127.0.0.1:5433".into(),
            ..s
        };
        assert_eq!(bare.url("x"), "postgresql://127.0.0.1:5433/x");
        assert_eq!(
            redact("postgresql://me:pw@h/db"),
            "postgresql://me:***@h/db"
        );
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
