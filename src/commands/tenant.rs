//! `switchyard tenant add | import | set | show | list | remove`: the tenant catalog, on the
//! backend the global flags name (the embedded world, `--endpoint-url`, `--aws`). The logic is
//! `switchyard_core::tenants`; this module turns flags into settings and prints the result.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use switchyard::backend::Backend;
use switchyard_core::policy::PolicyEngine;
use switchyard_core::state::{ExecutionInfo, Poll};
use switchyard_core::steps::Env;
use switchyard_core::tenants::{self, Tenant};
use switchyard_core::{Namespace, NamespaceSettings, ParameterLayout, StepError};

use crate::Output;

#[derive(Subcommand)]
pub enum TenantCommand {
    /// Register a namespace: its settings are validated and recorded; its first deploy
    /// restores its first database.
    Add {
        namespace: String,
        #[command(flatten)]
        settings: SettingsArgs,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Adopt a running tenant: its database and service are checked (the service's task
    /// definition must name the database), the settings and active pointer recorded, and the
    /// database tagged for the namespace. All or nothing.
    Import {
        namespace: String,
        /// The RDS instance the tenant's service runs on now.
        #[arg(long, value_name = "ID")]
        db_instance_id: String,
        #[command(flatten)]
        settings: SettingsArgs,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Change settings: KEY=VALUE with the settings' own names (plan=premium,
    /// expected_deploy_minutes=90, policies.capacity='{"max_storage_gib":200}'); an empty value
    /// unsets. Validated whole, written at once.
    Set {
        namespace: String,
        #[arg(required = true, value_name = "KEY=VALUE")]
        assignments: Vec<String>,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// One tenant's records: settings, active database and version, lock, tracked databases.
    Show {
        namespace: String,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Every registered tenant.
    List {
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Unregister a tenant. Refused while it has databases Switchyard manages, unless
    /// --retire: then (its service deleted first) they are deleted under its lock, as a
    /// clean-up deletes (the policies judge each delete; production keeps a final snapshot).
    Remove {
        namespace: String,
        #[arg(long)]
        retire: bool,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

impl TenantCommand {
    pub fn output(&self) -> Output {
        match self {
            TenantCommand::Add { output, .. }
            | TenantCommand::Import { output, .. }
            | TenantCommand::Set { output, .. }
            | TenantCommand::Show { output, .. }
            | TenantCommand::List { output }
            | TenantCommand::Remove { output, .. } => *output,
        }
    }

    /// Whether the command changes anything (the embedded world is then locked and saved).
    pub fn writes(&self) -> bool {
        !matches!(
            self,
            TenantCommand::Show { .. } | TenantCommand::List { .. }
        )
    }
}

/// A tenant's settings as flags; `--settings FILE` gives a JSON document the flags override.
#[derive(Args)]
pub struct SettingsArgs {
    /// A JSON file of settings (the `/switchyard/namespaces/<ns>/settings` document).
    #[arg(long, value_name = "FILE")]
    settings: Option<PathBuf>,
    /// RDS instance class of the databases deploys restore, e.g. db.t4g.medium.
    #[arg(long)]
    db_instance_class: Option<String>,
    #[arg(long)]
    db_subnet_group: Option<String>,
    /// A VPC security group of the restored databases (repeat for more).
    #[arg(long = "security-group", value_name = "SG_ID")]
    security_groups: Vec<String>,
    /// ECS cluster (name or ARN) of the tenant's service.
    #[arg(long)]
    cluster: Option<String>,
    /// ECS service name.
    #[arg(long)]
    service: Option<String>,
    /// The container whose environment carries the database coordinates [default: app].
    #[arg(long)]
    container: Option<String>,
    /// The region the tenant's stack lives in, as policies see it.
    #[arg(long = "tenant-region", value_name = "REGION")]
    tenant_region: Option<String>,
    #[arg(long)]
    plan: Option<String>,
    /// The application version it runs [import default: its image's tag].
    #[arg(long = "app-version", value_name = "VERSION")]
    app_version: Option<String>,
    /// Keep a final snapshot when deleting a replaced database [default: production tiers].
    #[arg(long)]
    final_snapshot: Option<bool>,
    /// A namespace pattern outside the tenant's project whose data it may take (repeat).
    #[arg(long = "allowed-source", value_name = "PATTERN")]
    allowed_sources: Vec<String>,
    #[arg(long, value_name = "MINUTES")]
    expected_deploy_minutes: Option<u32>,
    /// A plain setting the application reads from its environment (a limit, a feature flag),
    /// carried by every revision a deploy registers (repeat).
    #[arg(long = "env", value_name = "NAME=VALUE")]
    environment: Vec<String>,
    /// A secret setting, by reference: a Parameter Store SecureString (name or ARN) or a
    /// Secrets Manager ARN, resolved by ECS at task start (repeat).
    #[arg(long = "secret", value_name = "NAME=REFERENCE")]
    secrets: Vec<String>,
}

impl SettingsArgs {
    fn settings(&self) -> anyhow::Result<NamespaceSettings> {
        let mut document = match &self.settings {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading settings {}", path.display()))?;
                serde_json::from_str(&text)
                    .with_context(|| format!("settings {} are not JSON", path.display()))?
            }
            None => serde_json::json!({ "container": "app" }),
        };
        let mut set = |key: &str, value: serde_json::Value| document[key] = value;
        let flags: BTreeMap<&str, Option<serde_json::Value>> = BTreeMap::from([
            (
                "db_instance_class",
                self.db_instance_class.clone().map(Into::into),
            ),
            (
                "db_subnet_group",
                self.db_subnet_group.clone().map(Into::into),
            ),
            ("cluster", self.cluster.clone().map(Into::into)),
            ("service", self.service.clone().map(Into::into)),
            ("container", self.container.clone().map(Into::into)),
            ("region", self.tenant_region.clone().map(Into::into)),
            ("plan", self.plan.clone().map(Into::into)),
            ("version", self.app_version.clone().map(Into::into)),
            ("final_snapshot", self.final_snapshot.map(Into::into)),
            (
                "expected_deploy_minutes",
                self.expected_deploy_minutes.map(Into::into),
            ),
        ]);
        for (key, value) in flags {
            if let Some(value) = value {
                set(key, value);
            }
        }
        if !self.security_groups.is_empty() {
            set(
                "vpc_security_group_ids",
                self.security_groups.clone().into(),
            );
        }
        if !self.allowed_sources.is_empty() {
            set("allowed_sources", self.allowed_sources.clone().into());
        }
        for (key, pairs) in [
            ("app_environment", &self.environment),
            ("app_secrets", &self.secrets),
        ] {
            for pair in pairs {
                let (name, value) = pair
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("invalid {pair:?}: expected NAME=VALUE"))?;
                if !document[key].is_object() {
                    document[key] = serde_json::json!({});
                }
                document[key][name] = value.into();
            }
        }
        serde_json::from_value(document).map_err(|err| {
            anyhow::anyhow!(
                "incomplete or invalid settings: {err} (give --db-instance-class, --cluster and --service, or --settings FILE)"
            )
        })
    }
}

pub async fn run(
    backend: &Backend,
    layout: &ParameterLayout,
    policies: &dyn PolicyEngine,
    command: TenantCommand,
) -> anyhow::Result<ExitCode> {
    let aws = backend.aws_for(None);
    let aws = aws.as_ref();
    let output = command.output();
    match command {
        TenantCommand::Add {
            namespace,
            settings,
            ..
        } => {
            let ns: Namespace = namespace.parse().map_err(named)?;
            let tenant = tenants::add(aws, layout, &ns, &settings.settings()?)
                .await
                .map_err(named)?;
            print_tenant(&tenant, output, &format!("registered {ns}"))?;
        }
        TenantCommand::Import {
            namespace,
            db_instance_id,
            settings,
            ..
        } => {
            let ns: Namespace = namespace.parse().map_err(named)?;
            let imported =
                tenants::import(aws, layout, &ns, &settings.settings()?, &db_instance_id)
                    .await
                    .map_err(named)?;
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&imported)?),
                Output::Text => {
                    print!(
                        "{}",
                        render(
                            &imported.tenant,
                            &format!("imported {ns} on {db_instance_id}")
                        )
                    );
                    for warning in &imported.warnings {
                        println!("warning: {warning}");
                    }
                }
            }
        }
        TenantCommand::Set {
            namespace,
            assignments,
            ..
        } => {
            let ns: Namespace = namespace.parse().map_err(named)?;
            let tenant = tenants::set(aws, layout, &ns, &assignments)
                .await
                .map_err(named)?;
            print_tenant(&tenant, output, &format!("changed {ns}"))?;
        }
        TenantCommand::Show { namespace, .. } => {
            let ns: Namespace = namespace.parse().map_err(named)?;
            let tenant = tenants::show(aws, layout, &ns).await.map_err(named)?;
            print_tenant(&tenant, output, &ns.to_string())?;
        }
        TenantCommand::List { .. } => {
            let all = tenants::list(aws, layout).await.map_err(named)?;
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&all)?),
                Output::Text => print!("{}", render_list(&all)),
            }
        }
        TenantCommand::Remove {
            namespace, retire, ..
        } => {
            let ns: Namespace = namespace.parse().map_err(named)?;
            if !retire {
                tenants::remove(aws, layout, &ns).await.map_err(named)?;
                match output {
                    Output::Json => println!("{}", serde_json::json!({ "removed": ns.as_str() })),
                    Output::Text => println!("removed {ns}"),
                }
                return Ok(ExitCode::SUCCESS);
            }
            return retire_tenant(backend, layout, policies, &ns, output).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Retires a tenant pass by pass, waiting between passes as the state machines' poll loops do
/// (on the embedded world, virtual time), until it is removed or a policy keeps a database.
async fn retire_tenant(
    backend: &Backend,
    layout: &ParameterLayout,
    policies: &dyn PolicyEngine,
    ns: &Namespace,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let aws = backend.aws_for(None);
    let env = Env::new(aws.as_ref(), layout).with_policies(policies);
    let clock = backend.clock();
    let started_at = clock.now();
    let execution = ExecutionInfo {
        id: format!("retire-{ns}-{}", started_at.format("%Y%m%d-%H%M%S")),
        started_at,
    };
    let mut poll = Poll::default();
    let mut retired = None;
    let mut final_snapshots: Vec<String> = Vec::new();
    loop {
        let mut pass = tenants::retire(env, ns, &execution, &poll)
            .await
            .map_err(named)?;
        retired = retired.or(pass.retired.clone());
        // Each pass reports what it started; the summary is of them all.
        for snapshot in &pass.sweep.final_snapshots {
            if !final_snapshots.contains(snapshot) {
                final_snapshots.push(snapshot.clone());
            }
        }
        let finished =
            pass.removed || !pass.sweep.kept.is_empty() && pass.sweep.deleting.is_empty();
        if finished {
            pass.retired = retired.clone();
            pass.sweep.final_snapshots = final_snapshots;
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&pass)?),
                Output::Text => {
                    if let Some(db) = &retired {
                        println!("retired {ns}'s active database {db}");
                    }
                    for db in &pass.sweep.deleted {
                        println!("  deleted {db}");
                    }
                    for snapshot in &pass.sweep.final_snapshots {
                        println!("  final snapshot {snapshot}");
                    }
                    for kept in &pass.sweep.kept {
                        println!("  kept {kept}");
                    }
                    if pass.removed {
                        println!("removed {ns}");
                    } else {
                        println!("{ns} stays registered: a database was kept (see above)");
                    }
                }
            }
            return Ok(if pass.removed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
        poll = pass.sweep.poll.clone();
        if output == Output::Text {
            println!(
                "  deleting {} (waiting {} s)",
                pass.sweep.deleting.join(", "),
                poll.wait_seconds
            );
        }
        clock
            .sleep(Duration::from_secs(u64::from(poll.wait_seconds.max(1))))
            .await;
    }
}

/// A refusal as the user sees it: the error's stable name, then what is wrong.
fn named(err: StepError) -> anyhow::Error {
    anyhow::anyhow!("{}: {err}", err.name())
}

fn print_tenant(tenant: &Tenant, output: Output, heading: &str) -> anyhow::Result<()> {
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(tenant)?),
        Output::Text => print!("{}", render(tenant, heading)),
    }
    Ok(())
}

fn or_dash(value: Option<&str>) -> &str {
    value.unwrap_or("-")
}

/// One tenant, a line per fact.
pub fn render(tenant: &Tenant, heading: &str) -> String {
    let s = &tenant.settings;
    let mut out = String::new();
    let _ = writeln!(out, "{heading}");
    let mut line = |label: &str, value: String| {
        let _ = writeln!(out, "  {label:<18} {value}");
    };
    match &tenant.active {
        Some(active) => line(
            "active database",
            format!(
                "{} (pointer v{}, since {})",
                active.db_instance_id,
                tenant.pointer_version.unwrap_or_default(),
                active.activated_at.format("%Y-%m-%d %H:%M UTC")
            ),
        ),
        None => line("active database", "- (none until the first deploy)".into()),
    }
    let version = tenant
        .active
        .as_ref()
        .and_then(|a| a.app_version.as_deref())
        .or(s.version.as_deref());
    line("version", or_dash(version).to_owned());
    line("plan", or_dash(s.plan.as_deref()).to_owned());
    line("region", or_dash(s.region.as_deref()).to_owned());
    line(
        "service",
        format!("{}/{} (container {})", s.cluster, s.service, s.container),
    );
    line(
        "databases",
        format!(
            "{} subnet group {} security groups {}",
            s.db_instance_class,
            or_dash(s.db_subnet_group.as_deref()),
            if s.vpc_security_group_ids.is_empty() {
                "-".to_owned()
            } else {
                s.vpc_security_group_ids.join(",")
            }
        ),
    );
    if !s.policies.is_empty() {
        let names: Vec<&str> = s.policies.keys().map(String::as_str).collect();
        line("policy settings", names.join(", "));
    }
    if !s.allowed_sources.is_empty() {
        line("allowed sources", s.allowed_sources.join(", "));
    }
    line("locked by", or_dash(tenant.locked_by.as_deref()).to_owned());
    for tracked in &tenant.tracked {
        line(
            "tracked",
            format!(
                "{} ({:?}, by {})",
                tracked.db_instance_id, tracked.role, tracked.execution_id
            ),
        );
    }
    out
}

/// Every tenant, a row each.
pub fn render_list(all: &[Tenant]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16} {:<10} {:<10} {:<34} SERVICE",
        "NAMESPACE", "VERSION", "PLAN", "ACTIVE DB"
    );
    for tenant in all {
        let version = tenant
            .active
            .as_ref()
            .and_then(|a| a.app_version.as_deref())
            .or(tenant.settings.version.as_deref());
        let _ = writeln!(
            out,
            "{:<16} {:<10} {:<10} {:<34} {}/{}",
            tenant.namespace,
            or_dash(version),
            or_dash(tenant.settings.plan.as_deref()),
            or_dash(tenant.active.as_ref().map(|a| a.db_instance_id.as_str())),
            tenant.settings.cluster,
            tenant.settings.service
        );
    }
    let _ = writeln!(out, "{} tenant(s)", all.len());
    out
}
