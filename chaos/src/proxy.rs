//! An in-process TCP fault proxy: one per directed link (node → node, client → node).
//!
//! Traffic is forwarded byte for byte (TLS stays end to end). The link's [`LinkFault`] decides
//! what happens to it: `Up` forwards; `Down` closes every open connection at once and refuses
//! new ones (a partition); `Delay` holds each chunk for a fixed time plus jitter; `Drop` cuts a
//! connection with a given probability per chunk (a lossy link: the peer sees resets). A
//! directed link A→B carries the connections A opens to B — requests from A and their
//! replies — so cutting A→B but not B→A gives a one-way partition.
//!
//! Apart from its fault, a link may have a fixed one-way [`Proxy::set_latency`], as between
//! two regions: every chunk is delivered that long after it was read, in order, without
//! holding back the chunks behind it (a delay line, so throughput is unchanged and a round
//! trip takes twice the latency). Healing a fault leaves the latency in place.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Chunks a delay line holds at most before the reading side waits.
const IN_FLIGHT_CHUNKS: usize = 1024;

/// What a link does to its traffic.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LinkFault {
    /// Forward everything.
    Up,
    /// Cut: close open connections, refuse new ones.
    Down,
    /// Hold every chunk for `fixed` plus a uniform random share of `jitter`.
    Delay {
        /// Fixed delay.
        fixed: Duration,
        /// Maximum extra delay.
        jitter: Duration,
    },
    /// Cut a connection with this probability per forwarded chunk.
    Drop {
        /// Probability in `0.0..=1.0`.
        probability: f64,
    },
}

/// A running proxy.
pub struct Proxy {
    addr: SocketAddr,
    target: Arc<Mutex<Option<SocketAddr>>>,
    fault: watch::Sender<LinkFault>,
    latency_us: Arc<AtomicU64>,
    accept: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        // Closes every open connection: their pumps watch this channel.
        self.fault.send_replace(LinkFault::Down);
    }
}

impl Proxy {
    /// Starts a proxy on a free loopback port, forwarding nowhere until a target is set.
    ///
    /// # Errors
    /// An I/O error if no port can be bound.
    pub async fn start(seed: u64) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let target = Arc::new(Mutex::new(None));
        let (fault, _) = watch::channel(LinkFault::Up);
        let rng = Arc::new(Mutex::new(ChaCha8Rng::seed_from_u64(seed)));
        let latency_us = Arc::new(AtomicU64::new(0));
        let link = Link {
            faults: fault.clone(),
            rng,
            latency_us: Arc::clone(&latency_us),
        };
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&target), link));
        Ok(Self {
            addr,
            target,
            fault,
            latency_us,
            accept,
        })
    }

    /// Where clients of this link connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sets (or changes) where the link leads.
    pub fn set_target(&self, target: SocketAddr) {
        *self.target.lock().unwrap_or_else(PoisonError::into_inner) = Some(target);
    }

    /// Changes what the link does to its traffic; `Down` takes effect on open connections
    /// at once.
    pub fn set_fault(&self, fault: LinkFault) {
        self.fault.send_replace(fault);
    }

    /// The current fault.
    pub fn fault(&self) -> LinkFault {
        *self.fault.borrow()
    }

    /// Sets the fixed one-way latency of the link (both directions of each connection), on
    /// top of any fault; zero for none.
    pub fn set_latency(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_us.store(micros, Ordering::Relaxed);
    }

    /// The fixed one-way latency.
    pub fn latency(&self) -> Duration {
        Duration::from_micros(self.latency_us.load(Ordering::Relaxed))
    }
}

/// What every connection of a link shares: its fault, its random source and its latency.
#[derive(Clone)]
struct Link {
    faults: watch::Sender<LinkFault>,
    rng: Arc<Mutex<ChaCha8Rng>>,
    latency_us: Arc<AtomicU64>,
}

async fn accept_loop(listener: TcpListener, target: Arc<Mutex<Option<SocketAddr>>>, link: Link) {
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let destination = *target.lock().unwrap_or_else(PoisonError::into_inner);
        let (Some(destination), false) = (destination, *link.faults.borrow() == LinkFault::Down)
        else {
            // Partitioned, or not wired yet: the connection is refused by closing it.
            drop(inbound);
            continue;
        };
        let link = link.clone();
        tokio::spawn(async move {
            let mut faults = link.faults.subscribe();
            let Ok(outbound) = TcpStream::connect(destination).await else {
                return;
            };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            let (in_read, in_write) = inbound.into_split();
            let (out_read, out_write) = outbound.into_split();
            let upstream = pump(in_read, out_write, &link);
            let downstream = pump(out_read, in_write, &link);
            tokio::select! {
                _ = upstream => {}
                _ = downstream => {}
                _ = faults.wait_for(|f| *f == LinkFault::Down) => {}
            }
        });
    }
}

/// Forwards one direction until either side closes or the link fault says otherwise: a
/// reader that applies the fault and stamps each chunk with its delivery time, and a writer
/// that delivers the chunks in order at those times (what was read before a close is still
/// delivered).
async fn pump(
    from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    link: &Link,
) {
    let (chunks, mut line) = mpsc::channel::<(Instant, Vec<u8>)>(IN_FLIGHT_CHUNKS);
    let writer = async move {
        while let Some((due, chunk)) = line.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
    };
    tokio::pin!(writer);
    tokio::select! {
        () = &mut writer => return,
        () = read_chunks(from, chunks, link) => {}
    }
    writer.await;
}

/// The reading half of [`pump`].
async fn read_chunks(
    mut from: tokio::net::tcp::OwnedReadHalf,
    chunks: mpsc::Sender<(Instant, Vec<u8>)>,
    link: &Link,
) {
    let faults = link.faults.subscribe();
    let rng = &link.rng;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let fault = *faults.borrow();
        match fault {
            LinkFault::Up => {}
            LinkFault::Down => return,
            LinkFault::Delay { fixed, jitter } => {
                let extra = if jitter.is_zero() {
                    Duration::ZERO
                } else {
                    let mut rng = rng.lock().unwrap_or_else(PoisonError::into_inner);
                    jitter.mul_f64(rng.random::<f64>())
                };
                tokio::time::sleep(fixed + extra).await;
            }
            LinkFault::Drop { probability } => {
                let cut = rng
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .random::<f64>()
                    < probability;
                if cut {
                    return;
                }
            }
        }
        let Some(chunk) = buf.get(..n) else {
            return;
        };
        let due = Instant::now() + Duration::from_micros(link.latency_us.load(Ordering::Relaxed));
        if chunks.send((due, chunk.to_vec())).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    loop {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if s.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        addr
    }

    async fn round_trip(addr: SocketAddr) -> std::io::Result<Vec<u8>> {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut buf))
            .await
            .map_err(|_| std::io::Error::other("timeout"))??;
        Ok(buf.to_vec())
    }

    #[tokio::test]
    async fn forwards_cuts_and_heals() {
        let proxy = Proxy::start(1).await.unwrap();
        assert!(round_trip(proxy.addr()).await.is_err(), "no target yet");
        proxy.set_target(echo_server().await);
        assert_eq!(round_trip(proxy.addr()).await.unwrap(), b"ping");

        // An open connection is cut when the link goes down.
        let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
        open.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        open.read_exact(&mut buf).await.unwrap();
        proxy.set_fault(LinkFault::Down);
        let n = tokio::time::timeout(Duration::from_secs(2), open.read(&mut buf))
            .await
            .unwrap();
        assert!(matches!(n, Ok(0) | Err(_)), "the open connection is closed");
        assert!(round_trip(proxy.addr()).await.is_err());

        proxy.set_fault(LinkFault::Up);
        assert_eq!(round_trip(proxy.addr()).await.unwrap(), b"ping");
    }

    #[tokio::test]
    async fn delays_and_drops() {
        let proxy = Proxy::start(2).await.unwrap();
        proxy.set_target(echo_server().await);
        proxy.set_fault(LinkFault::Delay {
            fixed: Duration::from_millis(150),
            jitter: Duration::ZERO,
        });
        let started = std::time::Instant::now();
        round_trip(proxy.addr()).await.unwrap();
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "both directions delayed"
        );
        proxy.set_fault(LinkFault::Drop { probability: 1.0 });
        assert!(round_trip(proxy.addr()).await.is_err());
    }

    #[tokio::test]
    async fn latency_delays_each_way_without_holding_back_later_chunks() {
        let proxy = Proxy::start(3).await.unwrap();
        proxy.set_target(echo_server().await);
        proxy.set_latency(Duration::from_millis(100));
        let started = std::time::Instant::now();
        round_trip(proxy.addr()).await.unwrap();
        assert!(
            started.elapsed() >= Duration::from_millis(200),
            "a round trip takes twice the one-way latency"
        );
        // Ten chunks sent back to back arrive about one latency later, not ten: they are in
        // flight together. (Only the lower bound is timing-independent; the upper one is
        // generous.)
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        s.set_nodelay(true).unwrap();
        let started = std::time::Instant::now();
        for _ in 0..10 {
            s.write_all(b"ping").await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut buf = [0u8; 40];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..4], b"ping");
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(1000), "{elapsed:?}");
        // A fault heals back to the latency, not to none.
        proxy.set_fault(LinkFault::Down);
        proxy.set_fault(LinkFault::Up);
        assert_eq!(proxy.latency(), Duration::from_millis(100));
    }
}
