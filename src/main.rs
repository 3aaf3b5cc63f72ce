mod commands;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use switchyard::backend::{Access, Backend, DEFAULT_WORLD, WorldLock};
use switchyard::decisions::{ObservedEngine, PolicyNotes};
use switchyard::deploy::{self, DeployReport, DeployRequest, FromExecution, Source};
use switchyard::progress::{self, Progress};
use switchyard::status;
use switchyard_core::Namespace;
use switchyard_core::policy::PolicyEngine;
use switchyard_core::records::{DEFAULT_ROOT, ParameterLayout, Records};
use switchyard_sim::{Fault, World};

/// Blue/green database deploys for one-stack-per-tenant platforms.
#[derive(Parser)]
#[command(name = "switchyard", version, about)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Global {
    /// Send every AWS call to this endpoint through the AWS SDK (e.g. a moto server), instead of
    /// the embedded world.
    #[arg(long, global = true, env = "SWITCHYARD_ENDPOINT_URL")]
    endpoint_url: Option<String>,
    /// Use real AWS (credentials and region from the usual AWS chain) instead of the embedded world.
    #[arg(long, global = true, conflicts_with = "endpoint_url")]
    aws: bool,
    /// AWS region for --endpoint-url or --aws.
    #[arg(long, global = true, env = "AWS_REGION")]
    region: Option<String>,
    /// The embedded world's file.
    #[arg(long, global = true, default_value = DEFAULT_WORLD, env = "SWITCHYARD_WORLD")]
    world: PathBuf,
    /// The directory of policy plugins (<name>.cwasm / <name>.wasm) local runs evaluate
    /// [default: the checkout's plugins/dist, where the bundled policies are built on first use].
    #[arg(long, global = true, env = "SWITCHYARD_PLUGIN_DIR")]
    plugins: Option<PathBuf>,
    /// Parameter Store root of Switchyard's records.
    #[arg(long, global = true, default_value = DEFAULT_ROOT, env = "SWITCHYARD_PARAMETER_ROOT")]
    parameter_root: String,
}

#[derive(Subcommand)]
enum Command {
    /// (Re)create the embedded world.
    Init {
        /// Fill it with the demo tenants' stacks.
        #[arg(long)]
        demo: bool,
    },
    /// Deploy data into a namespace, blue/green, by running statemachines/deploy.asl.json.
    Deploy {
        /// The namespace to deploy into, e.g. xy-0146-qa.
        namespace: String,
        /// Snapshot this namespace's active database and deploy that.
        #[arg(
            long,
            value_name = "NAMESPACE",
            required_unless_present_any = ["snapshot", "settings_only", "promote_from"],
            conflicts_with_all = ["snapshot", "settings_only", "promote_from"]
        )]
        from: Option<String>,
        /// Deploy this existing snapshot (the artifact promoted dev -> qa -> prod).
        #[arg(
            long,
            value_name = "SNAPSHOT_ID",
            conflicts_with_all = ["settings_only", "promote_from"]
        )]
        snapshot: Option<String>,
        /// Promote: deploy the snapshot this namespace's active database was restored from
        /// (qa's data into prod), its id never typed.
        #[arg(long, value_name = "NAMESPACE", conflicts_with = "settings_only")]
        promote_from: Option<String>,
        /// With --promote-from: the execution whose deploy there was approved; refused if that
        /// namespace was deployed again since.
        #[arg(long, value_name = "EXECUTION_ARN", requires = "promote_from")]
        promoted_execution: Option<String>,
        /// Keep the database: roll a new revision carrying the tenant's settings onto the active
        /// one, with the same rollback rules.
        #[arg(long, conflicts_with = "image")]
        settings_only: bool,
        /// Also roll the service onto this image (a tag, or a full reference).
        #[arg(long)]
        image: Option<String>,
        /// Print what the deploy would do and every policy's verdict on each step; change
        /// nothing. Exit 1 when a policy says no.
        #[arg(long, conflicts_with_all = ["remote", "faults", "name"])]
        dry_run: bool,
        #[command(flatten)]
        run: RunOptions,
    },
    /// Show every namespace: active database, service revision, lock, leftovers, drift.
    Status {
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Run any state machine file locally.
    Run {
        /// An ASL file, e.g. statemachines/deploy.asl.json.
        machine: PathBuf,
        /// The execution input (a JSON file).
        #[arg(long)]
        input: Option<PathBuf>,
        #[command(flatten)]
        run: RunOptions,
    },
    /// Make, build, test and try policy plugins.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Find the databases and snapshots Switchyard made that nothing accounts for, by running
    /// statemachines/sweep-orphans.asl.json; delete them only with --apply.
    SweepOrphans {
        /// Delete the orphans found (each under its namespace's lock, after the policies allow).
        #[arg(long)]
        apply: bool,
        /// A database younger than this is never an orphan.
        #[arg(long, value_name = "HOURS")]
        min_age_hours: Option<u32>,
        /// An unreferenced snapshot younger than this is kept.
        #[arg(long, value_name = "DAYS")]
        snapshot_retention_days: Option<u32>,
        #[command(flatten)]
        run: RunOptions,
    },
    /// Check every invariant Switchyard keeps (one pointer on an available database, the
    /// service on it, nothing orphaned, no lock held) and name each violation; read only, on
    /// any backend. Exit 1 when something does not hold.
    Doctor {
        /// The namespaces to check (default: every registered one).
        namespaces: Vec<String>,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Run the seeded random fault campaign on a fresh demo world of its own: deploys,
    /// promotions, upgrades, sweeps and unlocks with 0-3 faults each, checking every invariant
    /// after each. Exit 1 on any violation.
    Campaign {
        #[arg(long, default_value_t = 20261130)]
        seed: u64,
        #[arg(long, default_value_t = 500)]
        operations: usize,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// The tenant catalog: register, adopt, change, show, list and remove tenants.
    Tenant {
        #[command(subcommand)]
        command: commands::tenant::TenantCommand,
    },
    /// The release catalog: record, import, list and show releases; prove their migrations on
    /// PostgreSQL.
    Release {
        #[command(subcommand)]
        command: commands::release::ReleaseCommand,
    },
    /// What upgrading a tenant to a release would run: the release catalog's one path from the
    /// version its database holds, each hop's migration, and the expected downtime.
    Plan {
        namespace: String,
        /// The target release.
        #[arg(long, value_name = "VERSION")]
        to: String,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Upgrade a tenant's own data and service to a release, blue/green: writes frozen (the
    /// service scaled to zero), its database snapshotted and restored beside, migrated along
    /// the catalog's path, swapped in, the release's image rolled out, the service thawed. Any
    /// failure thaws the service on the untouched old database.
    Upgrade {
        namespace: String,
        /// The target release.
        #[arg(long, value_name = "VERSION")]
        to: String,
        /// Print the plan and every policy's verdict; change nothing.
        #[arg(long, conflicts_with_all = ["remote", "faults", "name"])]
        dry_run: bool,
        #[command(flatten)]
        run: RunOptions,
    },
    /// Roll a release out across the fleet in waves (canaries first), each tenant upgraded by its
    /// own execution of the deploy machine, the rollout stopped when a wave fails beyond its
    /// tolerance. Pinned tenants, those already there and those a policy refuses now wait.
    Fleet {
        #[command(subcommand)]
        command: FleetCommand,
    },
    /// Release a namespace's deploy lock left by an execution that died.
    Unlock {
        namespace: String,
        /// The execution that holds the lock, as `status` shows it (a guard against releasing
        /// the wrong one).
        #[arg(long)]
        execution: String,
        /// Release it even though Step Functions says the execution still runs (with --aws or
        /// --endpoint-url, the execution's status is asked first).
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum FleetCommand {
    /// Who moves, in which wave, along which path; who is skipped and why. Changes nothing.
    Plan {
        /// The release the fleet moves to.
        #[arg(long, value_name = "VERSION")]
        to: String,
        /// A wave, in order: NAME:SELECTOR[:CONCURRENCY[:TOLERATED%]], SELECTOR namespace globs
        /// joined by `+`, a percentage of the tenants that move, or `rest` [default:
        /// canary:*-dev:2:0, early:10%:5:10, rest:rest:10:10].
        #[arg(long = "wave", value_name = "WAVE")]
        waves: Vec<String>,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Plan, then run statemachines/fleet.asl.json with the plan: every tenant's progress, and
    /// a summary of who moved, failed (with the error name) or was skipped. Exit 1 when the
    /// rollout failed: a wave went over its tolerance (it stopped before the next), or worse.
    Upgrade {
        #[arg(long, value_name = "VERSION")]
        to: String,
        #[arg(long = "wave", value_name = "WAVE")]
        waves: Vec<String>,
        /// A wave of more tenants than this runs as a Distributed Map, one child execution per
        /// chunk of its tenants (1 to 200) [default: 100].
        #[arg(long, value_name = "TENANTS")]
        distributed_above: Option<usize>,
        #[command(flatten)]
        run: RunOptions,
    },
    /// What a rollout's record says (while it runs or after): each wave, who moved, who failed
    /// and why, who waits, who was skipped. The rollout is the fleet execution's name.
    Show {
        rollout: String,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Delete a rollout's record from Parameter Store (its tenants' executions keep their own
    /// histories).
    Forget { rollout: String },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Create a policy project from the template (a crate on the author kit, one function to
    /// write, a fixture table).
    New {
        /// The plugin's name, kebab-case (e.g. `max-storage`).
        name: String,
        /// Where to create the project directory.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Build plugin projects into components and precompiled artifacts (default: the bundled
    /// policies under plugins/policies).
    Build {
        projects: Vec<PathBuf>,
        /// Where <name>.wasm and <name>.cwasm go.
        #[arg(long, default_value = switchyard::policy::DEFAULT_DIST)]
        out: PathBuf,
        /// Precompile for this target instead of this machine, e.g. aarch64-unknown-linux-gnu
        /// for Lambda on Graviton.
        #[arg(long, value_name = "TRIPLE")]
        precompile_for: Option<String>,
    },
    /// Build plugin projects and run each one's fixtures.json (default: the bundled policies).
    /// A built component (.wasm/.cwasm, from any language) is tested with --fixtures.
    Test {
        projects: Vec<PathBuf>,
        /// The fixture table for a component given as a file.
        #[arg(long)]
        fixtures: Option<PathBuf>,
    },
    /// Ask one plugin (a .wasm or .cwasm file) about one context (a JSON file).
    Eval {
        plugin: PathBuf,
        #[arg(long)]
        context: PathBuf,
    },
}

#[derive(Args)]
struct RunOptions {
    /// Make a stage fail on purpose (embedded world only): STAGE:KIND, STAGE one of preflight,
    /// freeze, snapshot, read-pointer, create-db, credentials, migrate, swap-pointer,
    /// deploy-service, wait-stable, cleanup, rollback, sweep (the orphan sweep's deletes);
    /// KIND one of error, throttle, lost-reply, rollout-failed (wait-stable only),
    /// task-failed[@HOP] (migrate only: that migration exits 1).
    #[arg(long = "inject-fault", value_name = "STAGE:KIND", value_parser = parse_fault)]
    faults: Vec<Fault>,
    /// The execution's name (default: derived from the namespace and time).
    #[arg(long)]
    name: Option<String>,
    /// Start the execution on the state machine deployed in AWS (with --aws, or --endpoint-url)
    /// and follow it from its execution history, instead of running it here.
    #[arg(long)]
    remote: bool,
    /// The deployed state machine for --remote: an ARN or a name [default: the stack's machine,
    /// found by its logical id, e.g. DeployStateMachine-*].
    #[arg(long, value_name = "ARN_OR_NAME", requires = "remote")]
    state_machine: Option<String>,
    /// Seconds between two reads of the execution history with --remote.
    #[arg(long, value_name = "SECONDS", default_value_t = 5, requires = "remote")]
    poll_seconds: u64,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

/// How an execution's outcome is summed up.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Report {
    Deploy,
    Sweep,
    Fleet,
    Execution,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    Text,
    Json,
}

fn parse_fault(text: &str) -> Result<Fault, String> {
    text.parse()
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SWITCHYARD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// The backend a command runs against. On the embedded world, a command that may change it
/// holds the world's lock (returned, to keep) from before it loads until it ends; so does the
/// first command on a path with no world yet, which creates it.
async fn backend(
    global: &Global,
    quiet: bool,
    access: Access,
) -> anyhow::Result<(Backend, Option<WorldLock>)> {
    if global.endpoint_url.is_some() || global.aws {
        return Ok((
            Backend::endpoint(global.endpoint_url.as_deref(), global.region.as_deref()).await,
            None,
        ));
    }
    let mut notice = |notice: String| {
        if !quiet {
            println!("{notice}");
        } else {
            eprintln!("{notice}");
        }
    };
    let lock = if access == Access::Write || !global.world.exists() {
        Some(WorldLock::take(&global.world, &mut notice)?)
    } else {
        None
    };
    Ok((Backend::embedded(&global.world, &mut notice)?, lock))
}

/// `deploy --dry-run` and `upgrade --dry-run`: the plan and every verdict, read only.
async fn dry_run_of(
    global: &Global,
    layout: &ParameterLayout,
    input: serde_json::Value,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let json = output == Output::Json;
    let (backend, _lock) = backend(global, json, Access::Read).await?;
    let engine = local_policies(global, json, &backend, layout).await?;
    commands::dry_run::run(&backend, layout, engine.as_ref(), input, output).await
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let global = &cli.global;
    let layout = ParameterLayout::new(&global.parameter_root)?;
    match cli.command {
        Command::Init { demo } => {
            if global.endpoint_url.is_some() || global.aws {
                bail!("init creates the embedded world; it has nothing to do with an endpoint");
            }
            let _lock = WorldLock::take(&global.world, &mut |notice| println!("{notice}"))?;
            let world = if demo {
                switchyard::backend::demo_world()?
            } else {
                World::new(chrono::Utc::now())
            };
            world.save(&global.world)?;
            println!(
                "created {} world at {}",
                if demo { "the demo" } else { "an empty" },
                global.world.display()
            );
            if demo {
                for tenant in switchyard_sim::demo_tenants() {
                    println!(
                        "  {:<14} db {}",
                        tenant.namespace,
                        tenant.db_instance_id(&world)
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Deploy {
            namespace,
            from,
            snapshot,
            promote_from,
            promoted_execution,
            image,
            settings_only,
            dry_run,
            run,
        } => {
            let source = match (from, snapshot, promote_from, settings_only) {
                (Some(ns), None, None, false) => Source::Namespace(ns),
                (None, Some(id), None, false) => Source::Snapshot(id),
                (None, None, Some(from), false) => Source::Promotion {
                    from,
                    execution: promoted_execution,
                },
                (None, None, None, true) => Source::SettingsOnly,
                _ => bail!(
                    "give exactly one of --from NAMESPACE, --snapshot SNAPSHOT_ID, --promote-from NAMESPACE or --settings-only"
                ),
            };
            let request = DeployRequest {
                namespace,
                source,
                image,
            };
            let heading = match &request.source {
                Source::Namespace(ns) => format!("deploy {ns} -> {}", request.namespace),
                Source::Snapshot(id) => format!("deploy snapshot {id} -> {}", request.namespace),
                Source::Promotion { from, .. } => {
                    format!("promote {from}'s snapshot -> {}", request.namespace)
                }
                Source::SettingsOnly => {
                    format!(
                        "deploy the settings of {}, keeping its database",
                        request.namespace
                    )
                }
            };
            if dry_run {
                return dry_run_of(global, &layout, request.input(), run.output).await;
            }
            let machine = PathBuf::from(deploy::DEPLOY_MACHINE);
            execute(
                global,
                &layout,
                &machine,
                request.input(),
                &run,
                &heading,
                Report::Deploy,
            )
            .await
        }
        Command::Run {
            machine,
            input,
            run,
        } => {
            let input = match input {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("reading input {}", path.display()))?;
                    serde_json::from_str(&text)
                        .with_context(|| format!("input {} is not JSON", path.display()))?
                }
                None => serde_json::json!({}),
            };
            let heading = format!("run {}", machine.display());
            let report = if machine.ends_with("deploy.asl.json") {
                Report::Deploy
            } else if machine.ends_with("sweep-orphans.asl.json") {
                Report::Sweep
            } else if machine.ends_with("fleet.asl.json") {
                Report::Fleet
            } else {
                Report::Execution
            };
            execute(global, &layout, &machine, input, &run, &heading, report).await
        }
        Command::SweepOrphans {
            apply,
            min_age_hours,
            snapshot_retention_days,
            run,
        } => {
            let mut input = serde_json::json!({ "apply": apply });
            if let Some(hours) = min_age_hours {
                input["min_age_hours"] = hours.into();
            }
            if let Some(days) = snapshot_retention_days {
                input["snapshot_retention_days"] = days.into();
            }
            let heading = if apply {
                "sweep orphans, deleting what is found"
            } else {
                "sweep orphans, report only"
            };
            let machine = PathBuf::from(deploy::SWEEP_MACHINE);
            execute(
                global,
                &layout,
                &machine,
                input,
                &run,
                heading,
                Report::Sweep,
            )
            .await
        }
        Command::Status { output } => {
            // Read only: the world file is not written.
            let (backend, _lock) = backend(global, output == Output::Json, Access::Read).await?;
            let aws = backend.aws_for(None);
            let statuses = switchyard_core::status::namespace_status(aws.as_ref(), &layout).await?;
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&statuses)?),
                Output::Text => print!("{}", status::render(&statuses)),
            }
            // What the view cost on AWS, where calls are rate-limited: on stderr, beside the view.
            if let Backend::Endpoint { aws, .. } = &backend {
                eprintln!(
                    "{}",
                    status::calls_summary(statuses.len(), &aws.calls().counts())
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Policy { command } => policy_command(command).await,
        Command::Doctor { namespaces, output } => {
            let (backend, _lock) = backend(global, output == Output::Json, Access::Read).await?;
            commands::doctor::run(&backend, &layout, &namespaces, output).await
        }
        Command::Campaign {
            seed,
            operations,
            output,
        } => commands::campaign::run(seed, operations, output).await,
        Command::Release { command } => {
            let json = command.output() == Output::Json;
            let writes = command.writes();
            let access = if writes { Access::Write } else { Access::Read };
            let connected = if command.needs_backend() {
                Some(backend(global, json, access).await?)
            } else {
                None
            };
            let result = commands::release::run(
                connected.as_ref().map(|(backend, _)| backend),
                &layout,
                command,
            )
            .await;
            if writes
                && result.is_ok()
                && let Some((backend, _)) = &connected
            {
                backend.persist()?;
            }
            result
        }
        Command::Plan {
            namespace,
            to,
            output,
        } => {
            let (backend, _lock) = backend(global, output == Output::Json, Access::Read).await?;
            commands::release::plan(&backend, &layout, &namespace, &to, output).await
        }
        Command::Upgrade {
            namespace,
            to,
            dry_run,
            run,
        } => {
            let input = serde_json::json!({ "namespace": namespace, "upgrade_to": to });
            if dry_run {
                return dry_run_of(global, &layout, input, run.output).await;
            }
            let heading = {
                // Said before anything changes: the path and how long the tenant is down.
                let (backend, _lock) = backend(global, true, Access::Read).await?;
                let ns: Namespace = namespace.parse()?;
                let aws = backend.aws_for(None);
                match switchyard_core::upgrades::plan_upgrade(aws.as_ref(), &layout, &ns, &to).await
                {
                    Ok(upgrade) => {
                        if run.output == Output::Text {
                            print!("{}", commands::release::render_plan(&upgrade));
                        }
                        format!("upgrade {namespace} {} -> {}", upgrade.from, upgrade.to)
                    }
                    // The machine's Preflight refuses it with the same named error.
                    Err(_) => format!("upgrade {namespace} -> {to}"),
                }
            };
            let machine = PathBuf::from(deploy::DEPLOY_MACHINE);
            execute(
                global,
                &layout,
                &machine,
                input,
                &run,
                &heading,
                Report::Deploy,
            )
            .await
        }
        Command::Fleet { command } => match command {
            FleetCommand::Plan { to, waves, output } => {
                let json = output == Output::Json;
                let waves = commands::fleet::waves(&waves)?;
                let (backend, _lock) = backend(global, json, Access::Read).await?;
                let engine = local_policies(global, json, &backend, &layout).await?;
                let plan =
                    commands::fleet::plan(&backend, &layout, engine.as_ref(), &to, &waves).await?;
                commands::fleet::print_plan(&plan, output)
            }
            FleetCommand::Upgrade {
                to,
                waves,
                distributed_above,
                run,
            } => {
                let json = run.output == Output::Json;
                let waves = commands::fleet::waves(&waves)?;
                // The rollout is named by the fleet execution; its record is kept before it
                // starts, so the machine carries only the outline.
                let rollout = run.name.clone().unwrap_or_else(|| {
                    execution_name(
                        &serde_json::Value::Null,
                        std::path::Path::new(deploy::FLEET_MACHINE),
                        chrono::Utc::now(),
                    )
                });
                let (plan, state) = {
                    let (backend, _lock) = backend(global, true, Access::Write).await?;
                    let engine = local_policies(global, true, &backend, &layout).await?;
                    let plan =
                        commands::fleet::plan(&backend, &layout, engine.as_ref(), &to, &waves)
                            .await?;
                    let state = commands::fleet::keep(
                        &backend,
                        &layout,
                        &rollout,
                        &plan,
                        distributed_above,
                    )
                    .await?;
                    backend.persist()?;
                    (plan, state)
                };
                if !json {
                    print!("{}", commands::fleet::render_plan(&plan));
                }
                let machine = deploy::machine_path(deploy::FLEET_MACHINE);
                let heading = format!("fleet upgrade to {to}");
                let run = RunOptions {
                    name: Some(rollout),
                    ..run
                };
                execute(
                    global,
                    &layout,
                    &machine,
                    serde_json::to_value(&state)?,
                    &run,
                    &heading,
                    Report::Fleet,
                )
                .await
            }
            FleetCommand::Show { rollout, output } => {
                let (backend, _lock) =
                    backend(global, output == Output::Json, Access::Read).await?;
                commands::fleet::show(&backend, &layout, &rollout, output).await
            }
            FleetCommand::Forget { rollout } => {
                let (backend, _lock) = backend(global, false, Access::Write).await?;
                let aws = backend.aws_for(None);
                let deleted =
                    switchyard_core::fleet::forget_rollout(aws.as_ref(), &layout, &rollout)
                        .await
                        .map_err(|err| anyhow::anyhow!("{}: {err}", err.name()))?;
                backend.persist()?;
                println!("forgot rollout {rollout}: {deleted} parameters deleted");
                Ok(ExitCode::SUCCESS)
            }
        },
        Command::Tenant { command } => {
            let json = command.output() == Output::Json;
            let writes = command.writes();
            let access = if writes { Access::Write } else { Access::Read };
            let (backend, _lock) = backend(global, json, access).await?;
            // Only retiring deletes databases, which the policies judge.
            let retires = matches!(
                command,
                commands::tenant::TenantCommand::Remove { retire: true, .. }
            );
            let policies: Arc<dyn PolicyEngine> = if retires {
                local_policies(global, json, &backend, &layout).await?
            } else {
                Arc::new(switchyard_core::policy::NoPlugins)
            };
            let result = commands::tenant::run(&backend, &layout, policies.as_ref(), command).await;
            // A refused command changed nothing (the world is not even re-saved); what a
            // retirement did before it failed stays done, as it would in AWS.
            if writes && (result.is_ok() || retires) {
                backend.persist()?;
            }
            result
        }
        Command::Unlock {
            namespace,
            execution,
            force,
        } => {
            let ns: Namespace = namespace.parse()?;
            let (backend, _lock) = backend(global, false, Access::Write).await?;
            let aws = backend.aws_for(None);
            let records = Records {
                params: aws.as_ref(),
                layout: &layout,
            };
            match records.lock(&ns).await? {
                Some(lock) if lock.execution_id == execution => {
                    if (global.endpoint_url.is_some() || global.aws) && !force {
                        refuse_a_running_execution(global, &execution).await?;
                    }
                    records.unlock(&ns).await?;
                    println!("released the lock of {ns} held by {execution}");
                }
                Some(lock) => bail!(
                    "the lock of {ns} is held by {}, not {execution}: left alone",
                    lock.execution_id
                ),
                None => println!("{ns} is not locked"),
            }
            backend.persist()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn execute(
    global: &Global,
    layout: &ParameterLayout,
    machine_path: &std::path::Path,
    input: serde_json::Value,
    options: &RunOptions,
    heading: &str,
    report: Report,
) -> anyhow::Result<ExitCode> {
    let json = options.output == Output::Json;
    if options.remote {
        return execute_remote(
            global,
            layout,
            machine_path,
            input,
            options,
            heading,
            report,
        )
        .await;
    }
    let (backend, _lock) = backend(global, json, Access::Write).await?;
    if !options.faults.is_empty() {
        let Some(world) = backend.world() else {
            bail!("--inject-fault works on the embedded world only");
        };
        for fault in &options.faults {
            world.inject(fault.clone());
        }
    }
    let machine = deploy::load_machine(machine_path, &backend)?;
    let name = options
        .name
        .clone()
        .unwrap_or_else(|| execution_name(&input, machine_path, backend.clock().now()));
    refuse_a_used_name(&backend, layout, &input, &name).await?;
    let backend = Arc::new(backend);
    let engine = local_policies(global, json, &backend, layout).await?;
    let notes = Arc::new(PolicyNotes::default());
    let (policies, progress) = if json {
        (engine, None)
    } else {
        println!("{heading}  (execution {name}, {})", describe(global));
        // What each policy said is shown under the step that asked, without touching the state.
        let observed: Arc<dyn PolicyEngine> = Arc::new(ObservedEngine::new(engine, notes.clone()));
        (
            observed,
            Some(Arc::new(
                Progress::stdout().with_policy_notes(notes.clone()),
            )),
        )
    };
    let observer = progress
        .clone()
        .map(|p| p as Arc<dyn switchyard_asl::Observer>);
    // A fleet's tenants: each nested execution's lines under its own name.
    let nested: Option<Arc<switchyard::backend::ObserverFactory>> = progress.as_ref().map(|_| {
        let notes = notes.clone();
        Arc::new(move |name: &str| {
            let progress = Progress::stdout()
                .with_policy_notes(notes.clone())
                .with_prefix(format!("    {name:<14} |"));
            Some(Arc::new(progress) as Arc<dyn switchyard_asl::Observer>)
        }) as Arc<switchyard::backend::ObserverFactory>
    });
    let execution = deploy::run_machine_nesting(
        backend.clone(),
        layout,
        policies,
        machine,
        &name,
        input,
        observer,
        nested,
    )
    .await;
    if let Some(progress) = &progress {
        progress.flush_notes();
    }
    backend.persist()?;
    let record = fleet_record(backend.aws_for(None).as_ref(), layout, report, &name).await;
    print_outcome(&execution, report, json, record)?;
    Ok(exit_code(&execution))
}

/// A fleet rollout's record, for its summary.
async fn fleet_record(
    aws: &dyn switchyard_core::ports::Aws,
    layout: &ParameterLayout,
    report: Report,
    rollout: &str,
) -> Option<anyhow::Result<switchyard_core::fleet::RolloutReport>> {
    if report != Report::Fleet {
        return None;
    }
    Some(
        switchyard_core::fleet::rollout_report(aws, layout, rollout)
            .await
            .map_err(|err| anyhow::anyhow!("{}: {err}", err.name())),
    )
}

/// The policy plugins local runs evaluate (built on first use, and only those the policy catalog
/// of `backend` binds), telling where they come from.
async fn local_policies(
    global: &Global,
    json: bool,
    backend: &Backend,
    layout: &ParameterLayout,
) -> anyhow::Result<Arc<dyn PolicyEngine>> {
    let plugin_dir = global
        .plugins
        .clone()
        .unwrap_or_else(switchyard::policy::default_plugin_dir);
    let aws = backend.aws_for(None);
    let records = switchyard_core::records::Records {
        params: aws.as_ref(),
        layout,
    };
    let bound: std::collections::BTreeSet<String> = records
        .policy_catalog()
        .await
        .map_err(|err| anyhow::anyhow!("{}: {err}", err.name()))?
        .bindings
        .into_iter()
        .map(|binding| binding.plugin)
        .collect();
    Ok(Arc::new(
        switchyard::policy::local_engine(&plugin_dir, &bound, &mut |notice| {
            if json {
                eprintln!("{notice}");
            } else {
                println!("{notice}");
            }
        })
        .await?,
    ))
}

fn exit_code(execution: &switchyard_asl::Execution) -> ExitCode {
    if matches!(execution.status, switchyard_asl::ExecutionStatus::Succeeded) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The execution's summary: a deploy's report, a sweep's findings, or any machine's outcome.
fn print_outcome(
    execution: &switchyard_asl::Execution,
    report: Report,
    json: bool,
    record: Option<anyhow::Result<switchyard_core::fleet::RolloutReport>>,
) -> anyhow::Result<()> {
    if report == Report::Deploy {
        let report = DeployReport::from_execution(execution);
        if json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", progress::render_report(&report));
        }
    } else if report == Report::Sweep && !json {
        print!("{}", progress::render_sweep(execution));
    } else if let Some(record) = record {
        let mut summary = commands::fleet::summary(execution.status.as_str(), record?);
        if summary.stopped.is_none() {
            summary.error = execution.error.clone();
            summary.cause = execution.cause.clone();
        }
        if json {
            println!("{}", serde_json::to_string_pretty(&summary)?);
        } else {
            print!("{}", commands::fleet::render_summary(&summary));
        }
    } else if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "status": execution.status,
                "execution_arn": execution.execution_arn,
                "output": execution.output,
                "error": execution.error,
                "cause": execution.cause,
                "state_transitions": execution.state_transitions,
            }))?
        );
    } else {
        print!("{}", progress::render_execution(execution));
    }
    Ok(())
}

/// Releasing the lock of a deploy that still runs would let a second deploy in beside it: when
/// the holder is a Step Functions execution, ask whether it still runs.
async fn refuse_a_running_execution(global: &Global, execution: &str) -> anyhow::Result<()> {
    use switchyard_core::ports::Executions as _;
    if !execution.starts_with("arn:") || !execution.contains(":execution:") {
        return Ok(());
    }
    let aws =
        switchyard_aws::SdkAws::from_env(global.endpoint_url.as_deref(), global.region.as_deref())
            .await;
    match aws.execution_status(execution).await {
        // PENDING_REDRIVE: a redrive would run on from where it failed, without its lock.
        Ok(status) if status == "RUNNING" || status == "PENDING_REDRIVE" => bail!(
            "{execution} is {status}: releasing its lock would let another deploy in beside it; stop it first, or give --force"
        ),
        Ok(_) => Ok(()),
        // A local run's execution is unknown to Step Functions: nothing says it runs.
        Err(switchyard_core::AwsError::NotFound { .. }) => Ok(()),
        Err(err) => Err(err).context(format!("asking Step Functions about {execution}")),
    }
}

/// Starts `input` on the deployed machine and follows it: the same lines and summary as a local
/// run, read from Step Functions' execution history. What the policies said is in the
/// functions' logs (one line per decision), not here.
async fn execute_remote(
    global: &Global,
    layout: &ParameterLayout,
    machine_path: &std::path::Path,
    input: serde_json::Value,
    options: &RunOptions,
    heading: &str,
    report: Report,
) -> anyhow::Result<ExitCode> {
    use switchyard::remote;
    use switchyard_core::ports::Executions as _;
    if global.endpoint_url.is_none() && !global.aws {
        bail!("--remote starts the state machine deployed in AWS: add --aws (or --endpoint-url)");
    }
    if !options.faults.is_empty() {
        bail!("--inject-fault works on the embedded world only, not with --remote");
    }
    let json = options.output == Output::Json;
    let aws =
        switchyard_aws::SdkAws::from_env(global.endpoint_url.as_deref(), global.region.as_deref())
            .await;
    let logical_id = match report {
        Report::Deploy => "DeployStateMachine",
        Report::Fleet => "FleetStateMachine",
        Report::Sweep => "SweepStateMachine",
        Report::Execution if options.state_machine.is_none() => {
            bail!("--remote with `run` needs --state-machine ARN_OR_NAME")
        }
        Report::Execution => "",
    };
    let machine_arn =
        remote::resolve_state_machine(&aws, options.state_machine.as_deref(), logical_id).await?;
    let name = options
        .name
        .clone()
        .unwrap_or_else(|| execution_name(&input, machine_path, chrono::Utc::now()));
    let execution_arn = aws
        .start_execution(&machine_arn, &name, &input.to_string())
        .await
        .with_context(|| format!("starting {name} on {machine_arn}"))?;
    let progress = (!json).then(Progress::stdout);
    if !json {
        println!("{heading}  (execution {name}, remote {machine_arn})");
    }
    let execution = remote::watch(
        &aws,
        &execution_arn,
        &name,
        input,
        progress
            .as_ref()
            .map(|p| p as &dyn switchyard_asl::Observer),
        std::time::Duration::from_secs(options.poll_seconds),
    )
    .await?;
    let record = fleet_record(&aws, layout, report, &name).await;
    print_outcome(&execution, report, json, record)?;
    Ok(exit_code(&execution))
}

/// Unique, as Step Functions requires of names: the execution id tags and locks everything, so
/// two runs must never share one.
/// A name Step Functions would refuse is refused here too, and so is one a run in the namespace
/// already had: the steps tell their own work from another run's by the execution's id and
/// start time, and a reused name must never make one run undo another's.
async fn refuse_a_used_name(
    backend: &Backend,
    layout: &ParameterLayout,
    input: &serde_json::Value,
    name: &str,
) -> anyhow::Result<()> {
    switchyard_core::identity::check_execution_name(name)?;
    let Some(namespace) = input.get("namespace").and_then(|v| v.as_str()) else {
        return Ok(());
    };
    let Ok(ns) = namespace.parse::<Namespace>() else {
        // The machine's first step names a bad namespace as the execution's error.
        return Ok(());
    };
    let aws = backend.aws_for(None);
    if let Some(place) =
        switchyard_core::identity::name_used_in(aws.as_ref(), layout, &ns, name).await?
    {
        bail!(
            "execution name {name:?} was already used in {ns} ({place}): give each run a name of its own"
        );
    }
    Ok(())
}

fn execution_name(
    input: &serde_json::Value,
    machine_path: &std::path::Path,
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    let stem = input
        .get("namespace")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| machine_stem(machine_path));
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{stem}-{}-{}", now.format("%Y%m%d-%H%M%S"), &suffix[..8])
}

/// `statemachines/sweep-orphans.asl.json` -> `sweep-orphans`.
fn machine_stem(path: &std::path::Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.split('.').next().unwrap_or_default();
    if stem.is_empty() {
        "execution".to_owned()
    } else {
        stem.to_owned()
    }
}

async fn policy_command(command: PolicyCommand) -> anyhow::Result<ExitCode> {
    use switchyard::policy;
    let projects_or_bundled = |projects: Vec<PathBuf>| -> anyhow::Result<Vec<PathBuf>> {
        if projects.is_empty() {
            policy::bundled_projects(std::path::Path::new("."))
        } else {
            Ok(projects)
        }
    };
    match command {
        PolicyCommand::New { name, dir } => {
            let project = policy::new_project(&name, &dir)?;
            println!("created {}", project.display());
            println!(
                "  write the policy in {}",
                project.join("src/lib.rs").display()
            );
            println!("  then: switchyard policy test {}", project.display());
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Build {
            projects,
            out,
            precompile_for,
        } => {
            policy::ensure_target(&mut |notice| println!("{notice}"))?;
            for project in projects_or_bundled(projects)? {
                let built = policy::build(&project, &out, precompile_for.as_deref()).await?;
                println!(
                    "built {} {} ({}): {} ({} bytes), {} ({} bytes)",
                    built.descriptor.name,
                    built.descriptor.version,
                    steps_of(&built.descriptor),
                    built.component.display(),
                    built.component_bytes,
                    built.precompiled.display(),
                    built.precompiled_bytes
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Test { projects, fixtures } => {
            let host = switchyard_policy::PluginHost::new(switchyard_policy::Limits::default())?;
            let (mut passed, mut failed) = (0, 0);
            for project in projects_or_bundled(projects)? {
                let (component, table) = if project.is_file() {
                    let Some(table) = &fixtures else {
                        bail!(
                            "{} is a component: give its table with --fixtures",
                            project.display()
                        );
                    };
                    (project.clone(), table.clone())
                } else {
                    policy::ensure_target(&mut |notice| println!("{notice}"))?;
                    (
                        policy::cargo_build(&project)?,
                        project.join("fixtures.json"),
                    )
                };
                let plugin = policy::load_file(&host, &component).await?;
                let fixtures = policy::read_fixtures(&table)?;
                println!("{} {}", plugin.descriptor.name, plugin.descriptor.version);
                for result in policy::run_fixtures(&host, &plugin, &fixtures).await? {
                    match result.failure {
                        None => {
                            passed += 1;
                            println!("  ok    {}", result.name);
                        }
                        Some(why) => {
                            failed += 1;
                            println!("  FAIL  {}\n        {why}", result.name);
                        }
                    }
                }
            }
            println!("fixtures: {passed} passed, {failed} failed");
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        PolicyCommand::Eval { plugin, context } => {
            let host = switchyard_policy::PluginHost::new(switchyard_policy::Limits::default())?;
            let loaded = policy::load_file(&host, &plugin).await?;
            let text = std::fs::read_to_string(&context)
                .with_context(|| format!("reading {}", context.display()))?;
            let context: switchyard_core::policy::PolicyContext = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a policy context", context.display()))?;
            if !loaded.descriptor.steps.contains(&context.step) {
                println!(
                    "{} does not check step {} (it checks {})",
                    loaded.descriptor.name,
                    context.step,
                    steps_of(&loaded.descriptor)
                );
                return Ok(ExitCode::SUCCESS);
            }
            let evaluation = host.evaluate(&loaded, &context).await?;
            println!("{}", serde_json::to_string_pretty(&evaluation)?);
            Ok(if evaluation.decision.is_allow() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

fn steps_of(descriptor: &switchyard_core::policy::PluginDescriptor) -> String {
    let steps: Vec<&str> = descriptor.steps.iter().map(|s| s.as_str()).collect();
    steps.join(", ")
}

fn describe(global: &Global) -> String {
    match (&global.endpoint_url, global.aws) {
        (Some(url), _) => format!("AWS API at {url}"),
        (None, true) => "AWS".to_owned(),
        (None, false) => format!("embedded world {}", global.world.display()),
    }
}
