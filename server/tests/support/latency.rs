//! A TCP relay that delays every byte the service behind it sends by a settable latency, as a slow network
//! or a slow database does: each chunk is held until its read time plus the latency, in order, so calls
//! still overlap (a delay, not a bottleneck).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{
        TcpListener, TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
    sync::{mpsc, watch},
    task::JoinHandle,
    time::Instant,
};

pub struct LatencyRelay {
    addr: SocketAddr,
    latency: Arc<watch::Sender<Duration>>,
    accept: JoinHandle<()>,
}

impl LatencyRelay {
    /// A relay to `target`, passing bytes at once until [`Self::set_latency`].
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("relay address");
        let latency = Arc::new(watch::channel(Duration::ZERO).0);
        let accept = tokio::spawn({
            let latency = latency.clone();
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let latency = latency.subscribe();
                    tokio::spawn(async move {
                        let Ok(server) = TcpStream::connect(target).await else { return };
                        let (client_read, client_write) = client.into_split();
                        let (server_read, server_write) = server.into_split();
                        tokio::join!(
                            copy_delayed(client_read, server_write, watch::channel(Duration::ZERO).1),
                            copy_delayed(server_read, client_write, latency)
                        );
                    });
                }
            }
        });
        Self { addr, latency, accept }
    }

    /// A relay in front of the service at `url` (`scheme://[credentials@]host:port/path`), and `url`
    /// pointed at the relay instead.
    pub async fn in_front_of(url: &str) -> (Self, String) {
        let (scheme, rest) = url.split_once("://").expect("a URL");
        let (credentials, rest) = rest.rsplit_once('@').map_or(("", rest), |(c, r)| (c, r));
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let target = tokio::net::lookup_host(authority).await.expect("the service's host").next().expect("an address");
        let relay = Self::start(target).await;
        let at = if credentials.is_empty() { String::new() } else { format!("{credentials}@") };
        let via_relay = format!("{scheme}://{at}{}/{path}", relay.addr);
        (relay, via_relay)
    }

    /// Delays every answer of the service by `latency` from now on (open connections included).
    pub fn set_latency(&self, latency: Duration) {
        self.latency.send_replace(latency);
    }
}

/// Copies `from` to `to`, each chunk written `latency` after it was read; ends when either side closes.
async fn copy_delayed(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, latency: watch::Receiver<Duration>) {
    let (chunks, mut due) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = async move {
        while let Some((at, chunk)) = due.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    };
    let reader = async move {
        let mut buffer = vec![0u8; 16 * 1024];
        while let Ok(read @ 1..) = from.read(&mut buffer).await {
            let at = Instant::now() + *latency.borrow();
            if chunks.send((at, buffer[..read].to_vec())).is_err() {
                break;
            }
        }
    };
    tokio::join!(reader, writer);
}

impl Drop for LatencyRelay {
    fn drop(&mut self) {
        self.accept.abort();
    }
}
