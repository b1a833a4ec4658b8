//! `tessera-chaos`: run a seeded fault-injection scenario against real Tessera nodes.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use clap::{Parser, Subcommand};
use tessera_chaos::run::{run, RunConfig};
use tessera_chaos::schedule::FaultKind;
use tessera_chaos::topology::Topology;

/// Fault-injection harness for Tessera.
#[derive(Debug, Parser)]
#[command(name = "tessera-chaos", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one seeded scenario and write its report.
    Run(RunArgs),
    /// Print the fault schedule of a scenario without running it.
    Plan(Scenario),
    /// Re-run the checkers over the files of an earlier run.
    Check {
        /// The run's report directory.
        dir: PathBuf,
    },
}

/// What fixes a run's fault schedule.
#[derive(Debug, clap::Args)]
struct Scenario {
    /// Seed of the fault schedule and the workload (`run`: default random, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Length of the faulty phase, e.g. 60s or 10m.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Number of nodes (3 or 5 are typical; default 3, or as many as --topology has).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=9))]
    nodes: Option<u64>,
    /// Nodes per region, e.g. 2+2+1: nodes 1-2 in region-1, 3-4 in region-2, 5 in region-3
    /// (default: node i in region-((i-1) mod 3 + 1)).
    #[arg(long)]
    topology: Option<String>,
    /// Faults to inject: kill,pause,partition,delay,drop,rolling,disk,region, all (disk needs
    /// root) or none.
    #[arg(long, default_value = "kill,pause,partition,delay")]
    faults: String,
}

impl Scenario {
    fn topology(&self) -> Result<Topology> {
        Ok(Topology::from_flags(self.topology.as_deref(), self.nodes)?)
    }
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    #[command(flatten)]
    scenario: Scenario,
    /// Concurrent clients.
    #[arg(long, default_value_t = 4)]
    clients: u32,
    /// Keys created before the faults start.
    #[arg(long, default_value_t = 6)]
    keys: u32,
    /// The `tessera` binary (default: next to this one).
    #[arg(long)]
    tessera: Option<PathBuf>,
    /// Report directory (default: chaos-report-<seed> in the current directory).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Deliberate bug to switch on in the nodes (needs a build with the fault-injection
    /// feature), e.g. serve-without-lease. Repeatable.
    #[arg(long)]
    inject: Vec<String>,
    /// Exit 0 only if this checker FAILS (to prove the harness catches an injected bug).
    #[arg(long)]
    expect_violation: Option<String>,
    /// One-way delay of every link between nodes of different regions, e.g. 50ms; the nodes
    /// then run with the WAN timing profile of docs/operations.md.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    wan_delay: Duration,
    /// Lease window of the nodes, in milliseconds (default 800, or 1000 with --wan-delay as
    /// in the WAN profile).
    #[arg(long)]
    lease_ms: Option<u64>,
}

fn print_verdicts(verdicts: &[tessera_chaos::invariants::Verdict]) {
    for verdict in verdicts {
        println!(
            "{} {:<14} {}",
            if verdict.ok { "PASS" } else { "FAIL" },
            verdict.checker,
            verdict.summary
        );
        for violation in verdict.violations.iter().take(3) {
            println!("       - {}", violation.message);
        }
    }
}

fn tessera_binary(given: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(path) = given {
        return Ok(path);
    }
    let me = std::env::current_exe().context("cannot locate this executable")?;
    let beside = me
        .parent()
        .map(|dir| dir.join("tessera"))
        .ok_or_else(|| anyhow!("cannot locate the tessera binary"))?;
    if beside.exists() {
        Ok(beside)
    } else {
        Err(anyhow!(
            "{} not found: build it (cargo build -p tessera-cli) or pass --tessera PATH",
            beside.display()
        ))
    }
}

fn print_plan(scenario: &Scenario) -> Result<ExitCode> {
    let seed = scenario.seed.ok_or_else(|| anyhow!("plan needs --seed"))?;
    let faults = FaultKind::parse_list(&scenario.faults).map_err(|e| anyhow!(e))?;
    let topology = scenario.topology()?;
    let plan = tessera_chaos::schedule::plan(seed, &topology, scenario.duration, &faults);
    for region in topology.regions() {
        println!(
            "{}: nodes {:?}",
            Topology::label(region),
            topology.members(region)
        );
    }
    for fault in &plan {
        println!(
            "{:>7.1}s  for {:>4.1}s  {}",
            fault.at.as_secs_f64(),
            fault.duration.as_secs_f64(),
            fault.action.describe()
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn execute(args: RunArgs) -> Result<ExitCode> {
    let scenario = args.scenario;
    let seed = scenario.seed.unwrap_or_else(|| {
        // Any value will do: it is printed so the run can be repeated.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        u64::from(nanos) ^ (u64::from(std::process::id()) << 32)
    });
    let faults = FaultKind::parse_list(&scenario.faults).map_err(|e| anyhow!(e))?;
    let topology = scenario.topology()?;
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("chaos-report-{seed}")));
    println!(
        "tessera-chaos: seed {seed}, {topology}, {} one-way between regions, {}, faults {}",
        humantime::format_duration(args.wan_delay),
        humantime::format_duration(scenario.duration),
        scenario.faults
    );
    let config = RunConfig {
        seed,
        duration: scenario.duration,
        topology,
        wan_delay: args.wan_delay,
        faults,
        clients: args.clients,
        keys: args.keys,
        binary: tessera_binary(args.tessera)?,
        out,
        inject: args.inject,
        lease_ms: args.lease_ms,
        work_parent: None,
    };
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    let outcome = tokio::select! {
        outcome = run(config) => outcome?,
        // Dropping the run future kills the nodes, unmounts their data and removes the
        // working directory.
        _ = tokio::signal::ctrl_c() => {
            eprintln!("interrupted; the cluster was torn down");
            return Ok(ExitCode::from(130));
        }
        _ = terminate.recv() => {
            eprintln!("terminated; the cluster was torn down");
            return Ok(ExitCode::from(143));
        }
    };
    print_verdicts(&outcome.verdicts);
    println!(
        "report: {}",
        outcome.report_dir.join("report.txt").display()
    );
    let code = match args.expect_violation {
        Some(name) => {
            let caught = outcome.verdicts.iter().any(|v| v.checker == name && !v.ok);
            println!(
                "expected checker {name:?} to fail: {}",
                if caught { "it did" } else { "it did NOT" }
            );
            u8::from(!caught)
        }
        None => u8::from(!outcome.passed()),
    };
    Ok(ExitCode::from(code))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TESSERA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,tessera_chaos=info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let Cli { command } = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match command {
        Command::Run(args) => runtime.block_on(execute(args)),
        Command::Plan(scenario) => print_plan(&scenario),
        Command::Check { dir } => tessera_chaos::run::recheck(&dir).map(|verdicts| {
            print_verdicts(&verdicts);
            ExitCode::from(u8::from(!verdicts.iter().all(|v| v.ok)))
        }),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
