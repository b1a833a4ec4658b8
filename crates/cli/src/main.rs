//! The `tessera` command.

mod cli;
mod commands;
mod output;
mod pki;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command, KeyCommand, OperatorCommand, OutputFormat, PkiCommand};
use crate::output::Failure;

fn output_format(command: &Command) -> OutputFormat {
    match command {
        Command::Server { .. } => OutputFormat::Text,
        Command::Dev(args) => args.output.format,
        Command::Pki(PkiCommand::Init { output, .. } | PkiCommand::IssueClient { output, .. }) => {
            output.format
        }
        Command::Operator(
            OperatorCommand::Init { connect, .. }
            | OperatorCommand::Unseal { connect, .. }
            | OperatorCommand::Seal { connect }
            | OperatorCommand::Status { connect },
        ) => connect.output.format,
        Command::Key(
            KeyCommand::Create { connect, .. }
            | KeyCommand::Describe { connect, .. }
            | KeyCommand::List { connect }
            | KeyCommand::Rotate { connect, .. },
        ) => connect.output.format,
        Command::Encrypt(args) => args.connect.output.format,
        Command::Decrypt(args) => args.connect.output.format,
    }
}

fn init_tracing(default: &str) {
    let filter = EnvFilter::try_from_env("TESSERA_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

async fn dispatch(command: Command) -> Result<(), Failure> {
    match command {
        Command::Server { config } => commands::server::run(&config).await,
        Command::Dev(args) => commands::dev::run(args).await,
        Command::Pki(command) => commands::pki::run(command),
        Command::Operator(command) => commands::operator::run(command).await,
        Command::Key(command) => commands::key::run(command).await,
        Command::Encrypt(args) => commands::crypto::encrypt(args).await,
        Command::Decrypt(args) => commands::crypto::decrypt(args).await,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = output_format(&cli.command);
    match &cli.command {
        Command::Server { .. } => init_tracing("info,openraft=warn,sled=warn"),
        Command::Dev(_) => init_tracing("info"),
        _ => init_tracing("warn"),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            Failure::Local(anyhow::anyhow!("cannot start the async runtime: {e}")).report(format);
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            failure.report(format);
            ExitCode::from(failure.exit_code())
        }
    }
}
