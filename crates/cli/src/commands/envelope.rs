//! `tessera encrypt-file|decrypt-file`: streaming envelope encryption of any size through the
//! SDK, to a file that appears only when complete.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use tessera_client::envelope::EnvelopeSummary;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter};

use crate::args::{DecryptFileArgs, EncryptFileArgs, Files, OutputFormat};
use crate::commands::client_with;
use crate::output::{print_json, Failure};
use crate::parse;

/// Buffer between the frame writer and the output (several writes per frame).
const OUTPUT_BUFFER: usize = 256 * 1024;

/// Runs `tessera encrypt-file`.
///
/// # Errors
/// [`Failure`] with the exit status to use.
pub async fn encrypt_file(args: EncryptFileArgs) -> Result<(), Failure> {
    let context = parse::context(&args.context)?;
    let client = client_with(&args.connect, |config| config.frame_size = args.frame_size)?;
    let format = args.connect.output.format;
    let summary = run(&args.files, format, |mut reader, mut writer| async move {
        client
            .encrypt_stream(&args.key, &context, &mut reader, &mut writer)
            .await
    })
    .await?;
    report("encrypted", &summary, &args.files, format);
    Ok(())
}

/// Runs `tessera decrypt-file`.
///
/// # Errors
/// [`Failure`] with the exit status to use.
pub async fn decrypt_file(args: DecryptFileArgs) -> Result<(), Failure> {
    let context = parse::context(&args.context)?;
    let client = client_with(&args.connect, |_| ())?;
    let format = args.connect.output.format;
    let summary = run(&args.files, format, |mut reader, mut writer| async move {
        client
            .decrypt_stream(&context, &mut reader, &mut writer)
            .await
    })
    .await?;
    report("decrypted", &summary, &args.files, format);
    Ok(())
}

type Reader = Box<dyn AsyncRead + Unpin + Send>;
type Writer = Box<dyn AsyncWrite + Unpin + Send>;

/// Opens the input and output, runs `work` between them with a progress bar, and commits the
/// output file only if `work` succeeded.
async fn run<F, Fut>(
    files: &Files,
    format: OutputFormat,
    work: F,
) -> Result<EnvelopeSummary, Failure>
where
    F: FnOnce(Reader, BufWriter<Writer>) -> Fut,
    Fut: std::future::Future<Output = Result<EnvelopeSummary, tessera_client::Error>>,
{
    if format == OutputFormat::Json && files.output == "-" {
        return Err(Failure::Usage(anyhow!(
            "-o json prints its summary on stdout: give the data an --out FILE"
        )));
    }
    let (input, size): (Reader, Option<u64>) = if files.input == "-" {
        (Box::new(tokio::io::stdin()), None)
    } else {
        let file = tokio::fs::File::open(&files.input)
            .await
            .map_err(|e| Failure::Usage(anyhow!("cannot open {}: {e}", files.input)))?;
        let size = file.metadata().await.ok().map(|m| m.len());
        (Box::new(file), size)
    };
    let bar = progress_bar(size, format);
    let reader: Reader = Box::new(bar.wrap_async_read(input));
    let target = if files.output == "-" {
        Target::Stdout
    } else {
        Target::file(Path::new(&files.output)).await?
    };
    let writer: Writer = match &target {
        Target::Stdout => Box::new(tokio::io::stdout()),
        Target::File { file, .. } => Box::new(file.try_clone().await.map_err(local)?),
    };
    let result = work(reader, BufWriter::with_capacity(OUTPUT_BUFFER, writer)).await;
    bar.finish_and_clear();
    match result {
        Ok(summary) => {
            target.commit().await?;
            Ok(summary)
        }
        Err(error) => {
            target.discard().await;
            Err(error.into())
        }
    }
}

fn local(error: std::io::Error) -> Failure {
    Failure::Local(error.into())
}

/// A progress bar on stderr when it is a terminal and the output is text; hidden otherwise.
fn progress_bar(size: Option<u64>, format: OutputFormat) -> ProgressBar {
    use std::io::IsTerminal;
    if format == OutputFormat::Json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let (bar, template) = match size {
        Some(size) => (
            ProgressBar::new(size),
            "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ),
        None => (
            ProgressBar::new_spinner(),
            "{spinner} {bytes} {bytes_per_sec}",
        ),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_draw_target(ProgressDrawTarget::stderr());
    bar
}

/// Where the output goes: stdout, or a temporary file renamed into place on success.
enum Target {
    Stdout,
    File {
        file: tokio::fs::File,
        temporary: PathBuf,
        path: PathBuf,
    },
}

impl Target {
    /// A new temporary file next to `path` (same directory, so the rename is atomic),
    /// readable by its owner only.
    async fn file(path: &Path) -> Result<Self, Failure> {
        use tessera_crypto::rand_core::Rng;
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        let name = path
            .file_name()
            .ok_or_else(|| Failure::Usage(anyhow!("--out {} names no file", path.display())))?;
        let suffix = tessera_crypto::os_rng().next_u64();
        let temporary = dir.join(format!(".{}.{suffix:016x}.tmp", name.to_string_lossy()));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)
            .await
            .map_err(|e| Failure::Usage(anyhow!("cannot create {}: {e}", temporary.display())))?;
        Ok(Self::File {
            file,
            temporary,
            path: path.to_owned(),
        })
    }

    /// Makes the output durable and visible under its name.
    async fn commit(self) -> Result<(), Failure> {
        match self {
            Self::Stdout => tokio::io::stdout().flush().await.map_err(local),
            Self::File {
                file,
                temporary,
                path,
            } => {
                let done = async {
                    file.sync_all().await?;
                    tokio::fs::rename(&temporary, &path).await
                };
                if let Err(e) = done.await {
                    let _ = tokio::fs::remove_file(&temporary).await;
                    return Err(Failure::Local(anyhow!(
                        "cannot write {}: {e}",
                        path.display()
                    )));
                }
                Ok(())
            }
        }
    }

    /// Removes the temporary file (best effort: the error being reported matters more).
    async fn discard(self) {
        if let Self::File { temporary, .. } = self {
            let _ = tokio::fs::remove_file(&temporary).await;
        }
    }
}

/// `{"operation","key_id","plaintext_bytes","frames","output"}` in JSON; a line on stderr in
/// text when the data went to a file (stdout carries the data otherwise).
fn report(operation: &str, summary: &EnvelopeSummary, files: &Files, format: OutputFormat) {
    match format {
        OutputFormat::Json => print_json(&json!({
            "operation": operation,
            "key_id": summary.key_id,
            "plaintext_bytes": summary.plaintext_bytes,
            "frames": summary.frames,
            "output": files.output,
        })),
        OutputFormat::Text if files.output != "-" => println!(
            "{operation} {} bytes ({} frames, key {}) into {}",
            summary.plaintext_bytes, summary.frames, summary.key_id, files.output
        ),
        OutputFormat::Text => {}
    }
}
