//! Limits on a port's accept loop, so that connections which never finish their TLS handshake
//! cannot exhaust a node's tasks, memory or file descriptors.
//!
//! - At most [`AcceptLimits::max_handshakes`] handshakes run at once on a port; when that many
//!   are running the loop stops accepting (new connections wait in the kernel's backlog).
//! - At most [`AcceptLimits::max_handshakes_per_source`] of them come from one IP address; a
//!   connection beyond that is closed at once, so one host cannot fill the port.
//! - A handshake that takes longer than [`AcceptLimits::handshake_timeout`] is dropped.
//! - Optionally at most [`AcceptLimits::max_connections`] connections (handshaking or open)
//!   exist on the port: the API port is given a budget below the process's open-file limit so
//!   that descriptors remain for the cluster port and storage.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_rustls::server::TlsStream;
use tonic::transport::server::Connected;

/// Default upper bound on one TLS handshake.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);

/// Default number of handshakes a port runs at once.
pub const DEFAULT_MAX_HANDSHAKES: usize = 256;

/// Default number of handshakes a port runs at once for one source address.
pub const DEFAULT_MAX_HANDSHAKES_PER_SOURCE: usize = 32;

/// How a port's accept loop bounds the connections it takes on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceptLimits {
    /// Upper bound on one TLS handshake.
    pub handshake_timeout: Duration,
    /// Handshakes running at once on the port; at the limit the port stops accepting.
    pub max_handshakes: usize,
    /// Handshakes running at once for one source IP address; beyond it a new connection from
    /// that address is closed at once.
    pub max_handshakes_per_source: usize,
    /// Connections (handshaking or established) the port holds at once; at the limit it stops
    /// accepting until one closes. `None`: no bound beyond the handshake limits.
    pub max_connections: Option<usize>,
}

impl Default for AcceptLimits {
    fn default() -> Self {
        Self {
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            max_handshakes: DEFAULT_MAX_HANDSHAKES,
            max_handshakes_per_source: DEFAULT_MAX_HANDSHAKES_PER_SOURCE,
            max_connections: None,
        }
    }
}

/// Handshakes in progress per source address.
#[derive(Debug)]
pub(crate) struct SourceCounts {
    max: usize,
    counts: Mutex<HashMap<IpAddr, usize>>,
}

impl SourceCounts {
    /// A tracker admitting at most `max` handshakes per address (at least one).
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            counts: Mutex::new(HashMap::new()),
        })
    }

    /// Admits one more handshake from `source`, or `None` if it already has the maximum.
    /// The slot is freed when the guard drops.
    pub(crate) fn admit(self: &Arc<Self>, source: IpAddr) -> Option<SourceSlot> {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(source).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(SourceSlot {
            counts: Arc::clone(self),
            source,
        })
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// One admitted handshake from a source address; frees its slot on drop.
#[derive(Debug)]
pub(crate) struct SourceSlot {
    counts: Arc<SourceCounts>,
    source: IpAddr,
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut counts = self
            .counts
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.source) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.source);
            }
        }
    }
}

/// An authenticated connection that holds its slot of the port's connection budget until it
/// closes.
#[derive(Debug)]
pub struct LimitedStream {
    inner: TlsStream<TcpStream>,
    _slot: Option<OwnedSemaphorePermit>,
}

impl LimitedStream {
    pub(crate) fn new(inner: TlsStream<TcpStream>, slot: Option<OwnedSemaphorePermit>) -> Self {
        Self { inner, _slot: slot }
    }

    /// The TCP socket under the TLS session, to read its options.
    pub fn tcp(&self) -> &TcpStream {
        self.inner.get_ref().0
    }
}

impl AsyncRead for LimitedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for LimitedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Connected for LimitedStream {
    type ConnectInfo = <TlsStream<TcpStream> as Connected>::ConnectInfo;

    /// The TLS connection's info, so that handlers see the peer's certificates as before.
    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn a_source_gets_at_most_its_share_and_slots_come_back() {
        let counts = SourceCounts::new(2);
        let a = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let b = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        let first = counts.admit(a).unwrap();
        let second = counts.admit(a).unwrap();
        assert!(
            counts.admit(a).is_none(),
            "a third handshake from one address"
        );
        let other = counts.admit(b).unwrap();
        drop(first);
        let third = counts.admit(a).unwrap();
        drop((second, third, other));
        assert_eq!(counts.tracked(), 0, "idle addresses are forgotten");
    }
}
