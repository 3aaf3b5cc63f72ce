use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use switchyard::backend::{Backend, DEFAULT_WORLD};
use switchyard::deploy::{self, DeployReport, DeployRequest, Source};
use switchyard::progress::{self, Progress};
use switchyard::status;
use switchyard_core::Namespace;
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
            required_unless_present = "snapshot",
            conflicts_with = "snapshot"
        )]
        from: Option<String>,
        /// Deploy this existing snapshot (the artifact promoted dev -> qa -> prod).
        #[arg(long, value_name = "SNAPSHOT_ID")]
        snapshot: Option<String>,
        /// Also roll the service onto this image (a tag, or a full reference).
        #[arg(long)]
        image: Option<String>,
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
    /// Release a namespace's deploy lock left by an execution that died.
    Unlock {
        namespace: String,
        /// The execution that holds the lock, as `status` shows it (a guard against releasing
        /// the wrong one).
        #[arg(long)]
        execution: String,
    },
}

#[derive(Args)]
struct RunOptions {
    /// Make a stage fail on purpose (embedded world only): STAGE:KIND, STAGE one of snapshot,
    /// read-pointer, create-db, swap-pointer, deploy-service, wait-stable, cleanup, rollback;
    /// KIND one of error, throttle, lost-reply, rollout-failed (wait-stable only).
    #[arg(long = "inject-fault", value_name = "STAGE:KIND", value_parser = parse_fault)]
    faults: Vec<Fault>,
    /// The execution's name (default: derived from the namespace and time).
    #[arg(long)]
    name: Option<String>,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
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

async fn backend(global: &Global, quiet: bool) -> anyhow::Result<Backend> {
    if global.endpoint_url.is_some() || global.aws {
        return Ok(
            Backend::endpoint(global.endpoint_url.as_deref(), global.region.as_deref()).await,
        );
    }
    Backend::embedded(&global.world, &mut |notice| {
        if !quiet {
            println!("{notice}");
        } else {
            eprintln!("{notice}");
        }
    })
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let global = &cli.global;
    let layout = ParameterLayout::new(&global.parameter_root)?;
    match cli.command {
        Command::Init { demo } => {
            if global.endpoint_url.is_some() || global.aws {
                bail!("init creates the embedded world; it has nothing to do with an endpoint");
            }
            let world = if demo {
                World::demo(chrono::Utc::now())
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
            image,
            run,
        } => {
            let source = match (from, snapshot) {
                (Some(ns), None) => Source::Namespace(ns),
                (None, Some(id)) => Source::Snapshot(id),
                _ => bail!("give exactly one of --from NAMESPACE or --snapshot SNAPSHOT_ID"),
            };
            let request = DeployRequest {
                namespace,
                source,
                image,
            };
            let heading = match &request.source {
                Source::Namespace(ns) => format!("deploy {ns} -> {}", request.namespace),
                Source::Snapshot(id) => format!("deploy snapshot {id} -> {}", request.namespace),
            };
            let machine = PathBuf::from(deploy::DEPLOY_MACHINE);
            execute(
                global,
                &layout,
                &machine,
                request.input(),
                &run,
                &heading,
                true,
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
            let is_deploy = machine.ends_with("deploy.asl.json");
            execute(global, &layout, &machine, input, &run, &heading, is_deploy).await
        }
        Command::Status { output } => {
            let backend = backend(global, output == Output::Json).await?;
            let aws = backend.aws_for(None);
            let statuses = switchyard_core::status::namespace_status(aws.as_ref(), &layout).await?;
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&statuses)?),
                Output::Text => print!("{}", status::render(&statuses)),
            }
            backend.persist()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Unlock {
            namespace,
            execution,
        } => {
            let ns: Namespace = namespace.parse()?;
            let backend = backend(global, false).await?;
            let aws = backend.aws_for(None);
            let records = Records {
                params: aws.as_ref(),
                layout: &layout,
            };
            match records.lock(&ns).await? {
                Some(lock) if lock.execution_id == execution => {
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
    is_deploy: bool,
) -> anyhow::Result<ExitCode> {
    let json = options.output == Output::Json;
    let backend = backend(global, json).await?;
    if !options.faults.is_empty() {
        let Some(world) = backend.world() else {
            bail!("--inject-fault works on the embedded world only");
        };
        for fault in &options.faults {
            world.inject(fault.clone());
        }
    }
    let machine = deploy::load_machine(machine_path, &backend)?;
    let name = options.name.clone().unwrap_or_else(|| {
        let stem = input
            .get("namespace")
            .and_then(|v| v.as_str())
            .unwrap_or("execution")
            .to_owned();
        // Unique, as Step Functions requires of names: the execution id tags and locks
        // everything, so two runs must never share one.
        let now = backend.clock().now();
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        format!("{stem}-{}-{}", now.format("%Y%m%d-%H%M%S"), &suffix[..8])
    });
    let backend = Arc::new(backend);
    let observer: Option<Arc<dyn switchyard_asl::Observer>> = if json {
        None
    } else {
        println!("{heading}  (execution {name}, {})", describe(global));
        Some(Arc::new(Progress::stdout()))
    };
    let execution =
        deploy::run_machine(backend.clone(), layout, machine, &name, input, observer).await;
    backend.persist()?;
    let succeeded = matches!(execution.status, switchyard_asl::ExecutionStatus::Succeeded);
    if is_deploy {
        let report = DeployReport::from_execution(&execution);
        if json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", progress::render_report(&report));
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
        print!("{}", progress::render_execution(&execution));
    }
    Ok(if succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn describe(global: &Global) -> String {
    match (&global.endpoint_url, global.aws) {
        (Some(url), _) => format!("AWS API at {url}"),
        (None, true) => "AWS".to_owned(),
        (None, false) => format!("embedded world {}", global.world.display()),
    }
}
