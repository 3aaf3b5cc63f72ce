//! `switchyard release add | import | list | show | verify` and `switchyard plan NS --to V`:
//! the release catalog (`{root}/releases`) on the backend the global flags name, and what an
//! upgrade of a tenant would run. The logic is `switchyard_core::upgrades` (and
//! `switchyard::verify` for the migration check); this module turns flags into calls and prints.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use switchyard::backend::Backend;
use switchyard::verify::{self, VerifyOptions};
use switchyard_core::upgrades::{
    self, Release, ReleaseCatalog, TenantUpgrade, UpgradePlan, Version,
};
use switchyard_core::{Namespace, ParameterLayout, StepError};

use crate::Output;

#[derive(Subcommand)]
pub enum ReleaseCommand {
    /// Record a release (or replace the entry of its version). The whole catalog is validated
    /// first: lines must each start at their .0, a backport must name a release of a later line.
    Add {
        /// `major.minor.patch`.
        version: String,
        /// The release's image: a full reference, or a tag of the service's repository.
        #[arg(long)]
        image: String,
        /// The release whose schema change this one carries to an older line.
        #[arg(long, value_name = "VERSION")]
        backport_of: Option<String>,
        /// How long its migration is expected to take (the upgrade's downtime estimate).
        #[arg(long, value_name = "MINUTES")]
        migration_minutes: Option<u32>,
        /// The migration: a container command run with the release's image, after `--`
        /// (e.g. `-- /app/migrate 1.3.3`). None: the release changes no schema.
        #[arg(last = true, value_name = "COMMAND")]
        migration: Vec<String>,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Replace the whole catalog with a file (`{"releases": [...]}`), validated.
    Import {
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Every release, in version order.
    List {
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// One release.
    Show {
        version: String,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Prove the migrations on a scratch PostgreSQL server: every path the planner gives (each
    /// pair of releases), each hop applied twice, and the resulting schema (`pg_dump
    /// --schema-only`) compared with the main line's. Needs `psql` and `pg_dump` on PATH.
    Verify {
        /// A server where scratch databases may be created and dropped, e.g.
        /// postgresql://postgres@127.0.0.1:5432/postgres.
        #[arg(long, value_name = "URL")]
        database_url: String,
        /// How to apply one release's migration to one database: a shell command with
        /// {version} and {database_url} filled in.
        #[arg(long, value_name = "COMMAND")]
        run: String,
        /// A catalog file instead of the installation's `{root}/releases`.
        #[arg(long, value_name = "FILE")]
        catalog: Option<PathBuf>,
        /// Verify only the paths that end at these versions (default: every release).
        #[arg(long = "to", value_name = "VERSION")]
        targets: Vec<String>,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

impl ReleaseCommand {
    pub fn output(&self) -> Output {
        match self {
            ReleaseCommand::Add { output, .. }
            | ReleaseCommand::Import { output, .. }
            | ReleaseCommand::List { output }
            | ReleaseCommand::Show { output, .. }
            | ReleaseCommand::Verify { output, .. } => *output,
        }
    }

    pub fn writes(&self) -> bool {
        matches!(
            self,
            ReleaseCommand::Add { .. } | ReleaseCommand::Import { .. }
        )
    }

    /// Whether it reads the installation's catalog (a verify of a file does not).
    pub fn needs_backend(&self) -> bool {
        !matches!(
            self,
            ReleaseCommand::Verify {
                catalog: Some(_),
                ..
            }
        )
    }
}

pub async fn run(
    backend: Option<&Backend>,
    layout: &ParameterLayout,
    command: ReleaseCommand,
) -> anyhow::Result<ExitCode> {
    let aws = backend.map(|b| b.aws_for(None));
    let aws = || {
        aws.as_deref()
            .context("this command needs a backend (the embedded world or an endpoint)")
    };
    match command {
        ReleaseCommand::Add {
            version,
            image,
            backport_of,
            migration_minutes,
            migration,
            output,
        } => {
            let release = Release {
                version: parse(&version)?,
                image,
                migration,
                backport_of: backport_of.as_deref().map(parse).transpose()?,
                migration_minutes,
            };
            let catalog = upgrades::add_release(aws()?, layout, release)
                .await
                .map_err(named)?;
            print_catalog(&catalog, output, "release recorded")
        }
        ReleaseCommand::Import { file, output } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let catalog = upgrades::import_catalog(aws()?, layout, &text)
                .await
                .map_err(named)?;
            print_catalog(&catalog, output, "catalog replaced")
        }
        ReleaseCommand::List { output } => {
            let catalog = upgrades::catalog(aws()?, layout).await?;
            print_catalog(&catalog, output, "")
        }
        ReleaseCommand::Show { version, output } => {
            let catalog = upgrades::catalog(aws()?, layout).await?;
            let release = catalog.find(&version)?;
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(release)?),
                Output::Text => print!("{}", render_releases(std::slice::from_ref(release))),
            }
            Ok(ExitCode::SUCCESS)
        }
        ReleaseCommand::Verify {
            database_url,
            run,
            catalog,
            targets,
            output,
        } => {
            let catalog = match catalog {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    ReleaseCatalog::from_json(&text)
                        .with_context(|| format!("catalog {}", path.display()))?
                }
                None => upgrades::catalog(aws()?, layout).await?,
            };
            let options = VerifyOptions {
                database_url,
                run,
                targets,
            };
            let report = verify::verify(&catalog, &options, move |line| {
                if output == Output::Text {
                    eprintln!("{line}");
                }
            })
            .await?;
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
                Output::Text => print!("{}", verify::render(&report)),
            }
            Ok(if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

/// A step error as the CLI prints it: its name (what scripts and the state machines match), then
/// the message.
fn named(err: StepError) -> anyhow::Error {
    anyhow::anyhow!("{}: {err}", err.name())
}

fn parse(version: &str) -> anyhow::Result<Version> {
    Version::parse(version.trim_start_matches('v'))
        .with_context(|| format!("{version:?} is not a major.minor.patch version"))
}

fn print_catalog(catalog: &ReleaseCatalog, output: Output, said: &str) -> anyhow::Result<ExitCode> {
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(catalog)?),
        Output::Text => {
            if !said.is_empty() {
                println!("{said}");
            }
            if catalog.is_empty() {
                println!("no releases recorded");
            } else {
                print!("{}", render_releases(catalog.releases()));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One line per release: version, image, migration, backport.
pub fn render_releases(releases: &[Release]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  {:<9} {:<28} {:<24} backport of",
        "version", "image", "migration"
    );
    for release in releases {
        let migration = if release.migration.is_empty() {
            "-".to_owned()
        } else {
            release.migration.join(" ")
        };
        let backport = release
            .backport_of
            .as_ref()
            .map_or_else(|| "-".to_owned(), ToString::to_string);
        let _ = writeln!(
            out,
            "  {:<9} {:<28} {:<24} {backport}",
            release.version.to_string(),
            release.image,
            migration
        );
    }
    out
}

/// `switchyard plan NS --to V`: the path and the migrations, and the expected downtime.
pub async fn plan(
    backend: &Backend,
    layout: &ParameterLayout,
    namespace: &str,
    to: &str,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let ns: Namespace = namespace.parse()?;
    let aws = backend.aws_for(None);
    let upgrade = upgrades::plan_upgrade(aws.as_ref(), layout, &ns, to)
        .await
        .map_err(named)?;
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&upgrade)?),
        Output::Text => print!("{}", render_plan(&upgrade)),
    }
    Ok(ExitCode::SUCCESS)
}

/// The path as the article draws it, then each hop and what it runs.
pub fn render_plan(upgrade: &TenantUpgrade) -> String {
    let mut out = String::new();
    let plan: &UpgradePlan = &upgrade.plan;
    let _ = writeln!(
        out,
        "upgrade {} from {} to {}",
        upgrade.namespace, upgrade.from, upgrade.to
    );
    if plan.hops.is_empty() {
        let _ = writeln!(
            out,
            "  nothing to do: {} runs {} already",
            upgrade.namespace, upgrade.to
        );
        return out;
    }
    let _ = writeln!(out, "  path  {}", plan.describe());
    for hop in &plan.hops {
        let runs = if hop.migration.is_empty() {
            "no schema change".to_owned()
        } else {
            format!("runs `{}`", hop.migration.join(" "))
        };
        let mut note = String::new();
        if let Some(original) = &hop.backport_of {
            let _ = write!(note, "; carries {original}'s change");
        }
        if let Some(applied) = &hop.already_applied_by {
            let _ = write!(
                note,
                "; already made by {applied}: its migration must find it there"
            );
        }
        let _ = writeln!(out, "  {:<7} {runs}{note}", hop.version.to_string());
    }
    let migrations = plan.migrations().count();
    let _ = writeln!(
        out,
        "  {migrations} migrations, run on a copy of {} before it takes traffic",
        upgrade
            .active_db_instance_id
            .as_deref()
            .unwrap_or("its database")
    );
    let _ = writeln!(
        out,
        "  expected downtime ~{} min: the service is scaled to 0 from the freeze to the rollout",
        upgrade.expected_downtime_minutes
    );
    out
}
