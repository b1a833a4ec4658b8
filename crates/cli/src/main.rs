//! The `tessera` command.

mod args;
mod commands;
mod output;
mod parse;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{ArgMatches, CommandFactory, FromArgMatches};
use tessera_server::config::LogFormat;
use tracing_subscriber::EnvFilter;

use crate::args::{AuditCommand, Cli, Command, OutputFormat, StorageCommand};
use crate::output::Failure;

/// jemalloc instead of the system allocator: a node's write bursts and snapshot builds
/// (tens of MB each) left glibc's arenas holding several times the live heap; jemalloc's
/// decay returns freed pages to the system (docs/performance.md, "Memory").
#[cfg(all(target_os = "linux", not(target_env = "msvc")))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's run-time options, compiled into the binary so that every build has them (an
/// environment variable of the build would be lost by `cargo install` from elsewhere): freed
/// pages go back to the system after about a second instead of ten (`dirty_decay_ms`), and
/// straight away rather than through the lazy `MADV_FREE` stage that still counts in a
/// process's resident memory (`muzzy_decay_ms:0`). jemalloc reads this C string, under its
/// prefixed symbol name, when it starts, after the options built in (background threads, from
/// the `background_threads` feature) and before the environment's `_RJEM_MALLOC_CONF`, which
/// still overrides them.
#[cfg(all(target_os = "linux", not(target_env = "msvc")))]
// SAFETY: `export_name` gives this static the symbol jemalloc reads as its `const char *`
// options when it initialises. `Option<&u8>` has the layout of a nullable pointer (guaranteed
// for `Option` of a reference), here pointing at a NUL-terminated string of static lifetime;
// nothing writes to it. `crates/cli/tests/allocator.rs` checks jemalloc reads the options.
#[allow(unsafe_code)]
#[export_name = "_rjem_malloc_conf"]
pub static MALLOC_CONF: Option<&u8> = b"dirty_decay_ms:1000,muzzy_decay_ms:0\0".first();

/// Logs to standard error at the `TESSERA_LOG` filter (else `default`), as text lines or as
/// one JSON object per line.
fn init_tracing(default: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_env("TESSERA_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().with_current_span(false).init(),
    }
}

/// The log format of `tessera server`: the flag, else the configuration file's `log_format`
/// (a file that does not load is reported by the server itself, in text).
fn server_log_format(config: &std::path::Path, flag: Option<LogFormat>) -> LogFormat {
    flag.or_else(|| {
        tessera_server::ServerConfig::load(config)
            .ok()
            .map(|c| c.log_format)
    })
    .unwrap_or_default()
}

async fn dispatch(command: Command) -> Result<(), Failure> {
    match command {
        Command::Server {
            config,
            stop_on_stdin_eof,
            ..
        } => commands::server::run(&config, stop_on_stdin_eof).await,
        Command::Storage(StorageCommand::Compact { config, output }) => {
            commands::storage::compact(&config, output.format)
        }
        Command::Audit(AuditCommand::Verify { files, output }) => {
            commands::audit::verify(&files, output.format)
        }
        Command::Audit(AuditCommand::Hash { value, connect }) => {
            commands::audit::hash(&value, connect).await
        }
        Command::Dev(args) => commands::dev::run(args).await,
        Command::Bench(args) => commands::bench::run(*args).await,
        Command::Pki(command) => commands::pki::run(command),
        Command::Operator(command) => commands::operator::run(command).await,
        Command::Key(command) => commands::key::run(command).await,
        Command::Alias(command) => commands::alias::run(command).await,
        Command::Encrypt(args) => commands::crypto::encrypt(args).await,
        Command::Decrypt(args) => commands::crypto::decrypt(args).await,
        Command::Reencrypt(args) => commands::crypto::reencrypt(args).await,
        Command::EncryptBatch(args) => commands::batch::encrypt(args).await,
        Command::DecryptBatch(args) => commands::batch::decrypt(args).await,
        Command::Datakey(args) => commands::datakey::data_key(args).await,
        Command::EncryptFile(args) => commands::envelope::encrypt_file(args).await,
        Command::DecryptFile(args) => commands::envelope::decrypt_file(args).await,
        Command::DatakeyPair(args) => commands::datakey::data_key_pair(args).await,
        Command::Sign(args) => commands::signing::sign(args).await,
        Command::Verify(args) => commands::signing::verify(args).await,
        Command::PublicKey(args) => commands::signing::public_key(args).await,
        Command::Mac(args) => commands::signing::mac(args).await,
        Command::VerifyMac(args) => commands::signing::verify_mac(args).await,
        Command::Random(args) => commands::crypto::random(args).await,
        Command::Whoami { connect } => commands::access::whoami(connect).await,
        Command::Policy(command) => commands::policy::run(command).await,
        Command::Grant(command) => commands::access::grant(command).await,
        Command::Cert(command) => commands::access::cert(command).await,
    }
}

/// `--key` once also named the client's private key; where a command has no `--key` flag, the
/// refusal says what the client key is called now.
fn renamed_flag_hint(error: &clap::Error) -> Option<&'static str> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if error.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    match error.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) if arg == "--key" || arg.starts_with("--key=") => Some(
            "the client's private key is given as --client-key (or TESSERA_CLIENT_KEY); \
             --key names a Tessera key",
        ),
        _ => None,
    }
}

/// Parses the command line into the command and the output format it asks for, so that
/// errors are reported in that format too.
fn parse_command_line() -> Result<(Cli, OutputFormat), clap::Error> {
    let mut matches = Cli::command().try_get_matches()?;
    let format = output_format(&matches);
    let cli = Cli::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut Cli::command()))?;
    Ok((cli, format))
}

/// The output format the innermost subcommand was given: its `-o` (the `format` of
/// [`args::Output`], which every command that prints a result flattens in), `bench --json`,
/// else text (`server`).
fn output_format(matches: &ArgMatches) -> OutputFormat {
    let mut innermost = matches;
    while let Some((_, subcommand)) = innermost.subcommand() {
        innermost = subcommand;
    }
    if let Ok(Some(format)) = innermost.try_get_one::<OutputFormat>("format") {
        *format
    } else if let Ok(Some(true)) = innermost.try_get_one::<bool>("json") {
        OutputFormat::Json
    } else {
        OutputFormat::Text
    }
}

fn main() -> ExitCode {
    let (cli, format) = match parse_command_line() {
        Ok(parsed) => parsed,
        Err(error) => {
            let hint = renamed_flag_hint(&error);
            let _ = error.print();
            if let Some(hint) = hint {
                eprintln!("\nnote: {hint}");
            }
            return ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2));
        }
    };
    match &cli.command {
        Command::Server {
            config, log_format, ..
        } => init_tracing(
            "info,openraft=warn,sled=warn",
            server_log_format(config, *log_format),
        ),
        Command::Dev(_) => init_tracing("info", LogFormat::Text),
        _ => init_tracing("warn", LogFormat::Text),
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
    let result = runtime.block_on(dispatch(cli.command));
    // A blocking read of stdin (`server --stop-on-stdin-eof`) never finishes on its own; do not
    // let it hold the process once the work is done.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            failure.report(format);
            ExitCode::from(failure.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use tessera_state::KeyVersion;

    use super::*;

    #[test]
    fn the_grammar_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Parses a command line given as one string of words separated by spaces.
    fn parse(line: &str) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(line.split_whitespace())
    }

    #[test]
    fn errors_are_reported_in_the_output_format_the_command_asked_for() {
        for (line, expected) in [
            ("tessera server --config c.toml", OutputFormat::Text),
            ("tessera bench --json", OutputFormat::Json),
            ("tessera bench", OutputFormat::Text),
            ("tessera dev -o json", OutputFormat::Json),
            (
                "tessera storage compact --config c.toml -o json",
                OutputFormat::Json,
            ),
            ("tessera key describe k", OutputFormat::Text),
            ("tessera key describe k -o json", OutputFormat::Json),
            (
                "tessera policy rate-limit list --output json",
                OutputFormat::Json,
            ),
            (
                "tessera operator snapshot save f -o json",
                OutputFormat::Json,
            ),
            (
                "tessera public-key k --format der -o json",
                OutputFormat::Json,
            ),
            ("tessera public-key k --format der", OutputFormat::Text),
        ] {
            let matches = Cli::command()
                .try_get_matches_from(line.split_whitespace())
                .unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(output_format(&matches), expected, "{line}");
        }
    }

    #[test]
    fn version_flags_of_commands_are_versions_of_keys() {
        let cli = parse("tessera verify --key k --signature AA== --version 3").unwrap();
        match cli.command {
            Command::Verify(args) => assert_eq!(args.version, Some(KeyVersion::new(3))),
            other => panic!("{other:?}"),
        }
        // The program's own --version is still there.
        let version = parse("tessera --version").map(|_| ());
        assert_eq!(
            version.map_err(|e| e.kind()),
            Err(clap::error::ErrorKind::DisplayVersion)
        );
    }

    #[test]
    fn schedule_deletion_takes_days_or_a_window_not_both() {
        assert!(parse("tessera key schedule-deletion k --days 7 --window 7d").is_err());
        assert!(parse("tessera key schedule-deletion k --days 7").is_ok());
        assert!(parse("tessera key schedule-deletion k").is_ok());
    }

    #[test]
    fn cert_revoke_takes_a_serial_or_a_fingerprint_not_both() {
        assert!(parse("tessera cert revoke --serial 0a").is_ok());
        assert!(parse("tessera cert revoke --fingerprint ab").is_ok());
        assert!(parse("tessera cert revoke").is_err());
        assert!(parse("tessera cert revoke --serial 0a --fingerprint ab").is_err());
    }

    #[test]
    fn grant_operations_split_at_commas() {
        let cli = parse(
            "tessera grant create --key k --grantee app --operations kms:Decrypt,kms:Encrypt \
             --expires 1h",
        )
        .unwrap();
        match cli.command {
            Command::Grant(args::GrantCommand::Create(args)) => {
                assert_eq!(args.operations, ["kms:Decrypt", "kms:Encrypt"]);
                assert_eq!(args.expires, Some(std::time::Duration::from_secs(3600)));
            }
            other => panic!("{other:?}"),
        }
        assert!(parse("tessera grant create --key k --grantee app").is_err());
    }

    #[test]
    fn the_old_client_key_flag_is_refused_naming_the_new_one() {
        for line in [
            "tessera key describe k --key c.pem",
            "tessera policy get p --key=c.pem",
        ] {
            let error = parse(line).unwrap_err();
            let hint = renamed_flag_hint(&error).unwrap_or_default();
            assert!(hint.contains("--client-key"), "{line}: {error}");
        }
        let other = parse("tessera key describe k --nope").unwrap_err();
        assert_eq!(renamed_flag_hint(&other), None);
    }

    #[test]
    fn every_command_takes_the_client_key_as_client_key() {
        for line in [
            "tessera sign --key k --client-key c.pem",
            "tessera datakey --key k --client-key c.pem",
            "tessera alias list --key k --client-key c.pem",
            "tessera key describe k --client-key c.pem",
            "tessera grant create --key k --grantee app --operations kms:Decrypt,kms:Encrypt \
             --client-key c.pem",
            "tessera grant list --key k --client-key c.pem",
            "tessera policy check --identity app --action kms:Encrypt --key k --client-key c.pem",
            "tessera policy get p --client-key c.pem",
        ] {
            assert!(parse(line).is_ok(), "{line}");
        }
    }
}
