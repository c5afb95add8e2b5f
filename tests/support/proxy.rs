//! A TCP proxy in front of a test server that reads the HTTP/2 frames passing through, so tests can break a
//! connection at a chosen moment: after the server has acted on a call, before its answer reaches the client.

use std::{
    io,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{
        TcpListener, TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
    task::JoinHandle,
};

const CLIENT_PREFACE_LEN: usize = 24;
const FRAME_HEADER_LEN: usize = 9;
const HEADERS_FRAME: u8 = 0x1;

pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<State>,
    accept: JoinHandle<()>,
}

#[derive(Default)]
struct State {
    lose_next_answer: AtomicBool,
    answers_lost: AtomicUsize,
    requests: AtomicUsize,
    stalled: AtomicBool,
}

impl FaultProxy {
    /// Forwards connections to `target` until dropped.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let state = Arc::new(State::default());
        let accept = tokio::spawn({
            let state = Arc::clone(&state);
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    tokio::spawn(relay(client, target, Arc::clone(&state)));
                }
            }
        });
        Self { addr, state, accept }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next answer the server starts to send (its response headers, so the call has run) is lost: the
    /// proxy closes that connection instead of forwarding it.
    pub fn lose_next_answer(&self) {
        self.state.lose_next_answer.store(true, Ordering::SeqCst);
    }

    pub fn answers_lost(&self) -> usize {
        self.state.answers_lost.load(Ordering::SeqCst)
    }

    /// Calls the proxy forwarded to the server, every attempt counted.
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// New connections are accepted and never answered.
    pub fn stall(&self) {
        self.state.stalled.store(true, Ordering::SeqCst);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn relay(client: TcpStream, target: SocketAddr, state: Arc<State>) {
    let (mut client_read, client_write) = client.into_split();
    if state.stalled.load(Ordering::SeqCst) {
        // Read and drop what the client sends, answer nothing.
        let mut sink = [0u8; 4096];
        while matches!(client_read.read(&mut sink).await, Ok(n) if n > 0) {}
        drop(client_write);
        return;
    }
    let Ok(server) = TcpStream::connect(target).await else { return };
    let (server_read, mut server_write) = server.into_split();
    let upstream = async {
        let mut preface = [0u8; CLIENT_PREFACE_LEN];
        client_read.read_exact(&mut preface).await?;
        server_write.write_all(&preface).await?;
        relay_frames(client_read, server_write, |kind, stream| {
            if kind == HEADERS_FRAME && stream != 0 {
                state.requests.fetch_add(1, Ordering::SeqCst);
            }
            true
        })
        .await
    };
    let downstream = relay_frames(server_read, client_write, |kind, stream| {
        let answer = kind == HEADERS_FRAME && stream != 0;
        if answer && state.lose_next_answer.swap(false, Ordering::SeqCst) {
            state.answers_lost.fetch_add(1, Ordering::SeqCst);
            return false;
        }
        true
    });
    // Whichever direction ends first closes both sockets.
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
    }
}

/// Copies whole frames, asking `forward(type, stream id)` about each; `false` ends the copy.
async fn relay_frames(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut forward: impl FnMut(u8, u32) -> bool,
) -> io::Result<()> {
    let mut header = [0u8; FRAME_HEADER_LEN];
    loop {
        from.read_exact(&mut header).await?;
        let length = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
        let stream = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff;
        let mut payload = vec![0u8; length];
        from.read_exact(&mut payload).await?;
        if !forward(header[3], stream) {
            return Ok(());
        }
        to.write_all(&header).await?;
        to.write_all(&payload).await?;
    }
}

/// Terminates TLS (HTTP/2 by ALPN) for `localhost` with a certificate of its own and forwards the plaintext
/// to a test server, as a load balancer in front of Aerobook would.
pub struct TlsProxy {
    addr: SocketAddr,
    ca_pem: String,
    accept: JoinHandle<()>,
}

impl TlsProxy {
    pub async fn start(target: SocketAddr) -> Self {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key)
            .expect("certificate and key");
        config.alpn_protocols = vec![b"h2".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind TLS proxy");
        let addr = listener.local_addr().expect("proxy address");
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let (Ok(mut tls), Ok(mut server)) =
                        (acceptor.accept(client).await, TcpStream::connect(target).await)
                    else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
                });
            }
        });
        Self { addr, ca_pem: certified.cert.pem(), accept }
    }

    /// `https://127.0.0.1:port`: the certificate names `localhost`, so clients set that as the TLS domain.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The self-signed certificate, for clients to trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// A plain TCP relay (to a database, say) that can be cut, dropping every open connection and refusing new
/// ones, or black-holed, keeping every connection open (and accepting new ones) but passing no byte, and
/// then restored: an outage of the service behind it, as the server sees one. Retargeted, it is the
/// address a failover moves to the new primary (a virtual IP, or a proxy's read-write endpoint).
pub struct TcpSwitch {
    addr: SocketAddr,
    state: Arc<SwitchState>,
    accept: JoinHandle<()>,
}

struct SwitchState {
    /// Where new connections go; [`TcpSwitch::retarget`] moves it (a failover's new primary).
    target: std::sync::Mutex<SocketAddr>,
    cut: AtomicBool,
    /// `true` while black-holed: relays hold what they read until it turns `false`.
    silent: tokio::sync::watch::Sender<bool>,
    /// Relays of open connections, aborted on a cut.
    relays: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl TcpSwitch {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind switch");
        let addr = listener.local_addr().expect("switch address");
        let state = Arc::new(SwitchState {
            target: std::sync::Mutex::new(target),
            cut: AtomicBool::new(false),
            silent: tokio::sync::watch::channel(false).0,
            relays: std::sync::Mutex::default(),
        });
        let accept = tokio::spawn({
            let state = Arc::clone(&state);
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    if state.cut.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let silent = state.silent.subscribe();
                    let target = *state.target.lock().unwrap();
                    let relay = tokio::spawn(async move {
                        if let Ok(server) = TcpStream::connect(target).await {
                            let (client_read, client_write) = client.into_split();
                            let (server_read, server_write) = server.into_split();
                            tokio::join!(
                                pass(client_read, server_write, silent.clone()),
                                pass(server_read, client_write, silent)
                            );
                        }
                    });
                    state.relays.lock().unwrap().push(relay);
                }
            }
        });
        Self { addr, state, accept }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops every open connection and refuses new ones until [`Self::restore`].
    pub fn cut(&self) {
        self.state.cut.store(true, Ordering::SeqCst);
        for relay in self.state.relays.lock().unwrap().drain(..) {
            relay.abort();
        }
    }

    /// Keeps every connection open and accepts new ones, but passes no byte either way until
    /// [`Self::restore`]: a service that stopped answering without closing anything.
    pub fn black_hole(&self) {
        self.state.silent.send_replace(true);
    }

    /// Sends new connections to `target` from now on (open ones stay where they are).
    pub fn retarget(&self, target: SocketAddr) {
        *self.state.target.lock().unwrap() = target;
    }

    pub fn restore(&self) {
        self.state.cut.store(false, Ordering::SeqCst);
        self.state.silent.send_replace(false);
    }
}

/// Copies `from` to `to`, holding each chunk while the switch is silent; ends when either side closes.
async fn pass(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut silent: tokio::sync::watch::Receiver<bool>) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        if silent.wait_for(|silent| !*silent).await.is_err() || to.write_all(&buffer[..read]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

impl Drop for TcpSwitch {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}
