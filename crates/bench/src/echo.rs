//! The reference a crypto call is compared with: a bare tonic + rustls mutual-TLS gRPC server
//! whose one RPC returns the bytes it is given. It runs in its own process (`tessera bench
//! --serve-echo`), as a node does, so it does not share the load generator's threads.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tonic::transport::server::TcpIncoming;
use tonic::transport::Channel;

use crate::load::{over, Op, OpError};
use crate::pb::echo::echo_client::EchoClient;
use crate::pb::echo::echo_server::{Echo, EchoServer};
use crate::pb::echo::EchoMessage;
use crate::Error;

/// The service: answers with the request's payload.
#[derive(Debug, Default)]
struct EchoService;

#[tonic::async_trait]
impl Echo for EchoService {
    async fn echo(
        &self,
        request: tonic::Request<EchoMessage>,
    ) -> Result<tonic::Response<EchoMessage>, tonic::Status> {
        Ok(tonic::Response::new(request.into_inner()))
    }
}

/// Serves the echo RPC on a free 127.0.0.1 port with the PKI in `pki_dir`, prints the bound
/// address on standard output, and stops when standard input closes.
///
/// # Errors
/// [`Error`] if the port cannot be bound, the certificates cannot be read or serving fails.
pub async fn serve(pki_dir: &Path) -> Result<(), Error> {
    let bind_error = |source| tessera_launcher::Error::Io {
        action: "bind",
        path: "127.0.0.1:0".into(),
        source,
    };
    let incoming = TcpIncoming::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .map_err(bind_error)?
        .with_nodelay(Some(true));
    let addr = incoming.local_addr().map_err(bind_error)?;
    println!("{addr}");
    let stdin_closed = async {
        // End of input (or a read error) means the bench is gone.
        let _ = tokio::io::copy(&mut tokio::io::stdin(), &mut tokio::io::sink()).await;
    };
    tonic::transport::Server::builder()
        .tls_config(crate::tls::server(pki_dir)?)
        .map_err(Error::Serve)?
        .add_service(EchoServer::new(EchoService))
        .serve_with_incoming_shutdown(incoming, stdin_closed)
        .await
        .map_err(Error::Serve)
}

/// A running echo server process; dropping it kills the process.
#[derive(Debug)]
pub struct EchoProcess {
    /// Where it listens.
    pub addr: String,
    /// The process (killed on drop).
    child: Child,
}

impl EchoProcess {
    /// Starts `exe bench --serve-echo PKI_DIR` and reads the address it bound.
    ///
    /// # Errors
    /// [`Error::Echo`] if it cannot start or does not print an address.
    pub async fn start(exe: &Path, pki_dir: &Path) -> Result<Self, Error> {
        let mut child = Command::new(exe)
            .arg("bench")
            .arg("--serve-echo")
            .arg(pki_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(Error::Echo)?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| Error::Echo(std::io::Error::other("no standard output")))?;
        let line = BufReader::new(stdout)
            .lines()
            .next_line()
            .await
            .map_err(Error::Echo)?
            .ok_or_else(|| Error::Echo(std::io::Error::other("exited before listening")))?;
        Ok(Self {
            addr: line.trim().to_owned(),
            child,
        })
    }

    /// The process id.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

/// Echoes `payload` over `k` connections to `addr`, request `seq` on connection `seq % k`.
///
/// # Errors
/// [`Error`] if the certificates cannot be read.
pub fn op(pki_dir: &Path, addr: &str, k: usize, payload: Arc<Vec<u8>>) -> Result<Op, Error> {
    let clients = crate::tls::connections(pki_dir, addr, k, EchoClient::new)?;
    Ok(over(clients, move |mut client: EchoClient<Channel>, _| {
        let message = EchoMessage {
            payload: payload.to_vec(),
        };
        async move { client.echo(message).await.map(drop).map_err(OpError::from) }
    }))
}
