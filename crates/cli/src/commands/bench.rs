//! `tessera bench`: a thin front to [`tessera_bench`], which starts the cluster and the
//! references, drives the load and builds the report; this prints or writes it.

use anyhow::{anyhow, Context};

use crate::args::BenchArgs;
use crate::output::Failure;

/// Runs the bench (or, with `--serve-echo`, the echo reference it starts).
///
/// # Errors
/// [`Failure::Local`] if the run cannot complete or the chart cannot be written.
pub async fn run(args: BenchArgs) -> Result<(), Failure> {
    if let Some(pki) = &args.serve_echo {
        return tessera_bench::echo::serve(pki)
            .await
            .map_err(|e| Failure::Local(e.into()));
    }
    let exe = std::env::current_exe()
        .context("cannot find the tessera executable")
        .map_err(Failure::Local)?;
    let mut options = if args.quick {
        tessera_bench::Options::quick(exe)
    } else {
        tessera_bench::Options::full(exe)
    };
    if !args.workloads.is_empty() {
        options.groups = args.workloads.clone();
    }
    if !args.concurrency.is_empty() {
        if args.concurrency.contains(&0) {
            return Err(Failure::Usage(anyhow!(
                "--concurrency values must be at least 1"
            )));
        }
        options.concurrency = args.concurrency.clone();
    }
    options.duration = args.duration.unwrap_or(options.duration);
    options.warmup = args.warmup.unwrap_or(options.warmup);
    options.reps = args.reps.unwrap_or(options.reps);
    options.keys = args.keys.unwrap_or(options.keys);
    options.failover_tries = args.failover_tries.unwrap_or(options.failover_tries);
    options.payload_bytes = args.payload.unwrap_or(options.payload_bytes);
    options.etcd = options.etcd && !args.no_etcd;
    options.work_dir = args.dir.clone();
    if options.payload_bytes == 0 {
        return Err(Failure::Usage(anyhow!("--payload must be at least 1 byte")));
    }

    let report = tessera_bench::run(&options)
        .await
        .map_err(|e| Failure::Local(e.into()))?;
    if let Some(path) = &args.svg {
        std::fs::write(path, tessera_bench::svg::chart(&report))
            .with_context(|| format!("cannot write {}", path.display()))
            .map_err(Failure::Local)?;
    }
    if args.json {
        let json = serde_json::to_string_pretty(&report)
            .context("cannot encode the report")
            .map_err(Failure::Local)?;
        println!("{json}");
        // The person who started the run still sees the table.
        eprint!("{}", report.table());
    } else {
        print!("{}", report.table());
    }
    Ok(())
}
