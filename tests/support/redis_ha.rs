//! Highly available Redis of a test's own, from `redis-server` processes (Debian's package, the binary of
//! the machine's own Redis) on free ports: a Redis Cluster (masters with a replica each, joined with
//! `redis-cli --cluster create`), or a master and its replica watched by three Sentinels
//! (`redis-server --sentinel`). A test kills a master and waits for its replica to take over, as a real node
//! failure and failover go.

use std::{net::TcpListener, path::Path, process::Stdio, time::Duration};

use tokio::process::{Child, Command};

/// How long a set may take to form or to fail over (node timeouts are 1 s).
const PATIENCE: Duration = Duration::from_secs(30);
/// How often a forming set is asked whether it is ready: Redis says so only when asked.
const POLL: Duration = Duration::from_millis(50);
/// The name Sentinel knows the master by.
const SERVICE: &str = "mymaster";

struct Node {
    port: u16,
    process: Option<Child>,
}

/// Processes of one set, in one directory, killed when dropped.
struct Nodes {
    nodes: Vec<Node>,
    dir: tempfile::TempDir,
}

impl Nodes {
    /// `None` when `redis-server` or `redis-cli` is not installed.
    fn new() -> Option<Self> {
        if which("redis-server").is_none() || which("redis-cli").is_none() {
            eprintln!("skipped: redis-server and redis-cli are not installed");
            return None;
        }
        Some(Self { nodes: Vec::new(), dir: tempfile::tempdir().expect("a directory for the nodes") })
    }

    /// Starts `redis-server` on a fresh port with `args` (after the port and the common settings).
    fn start(&mut self, args: &[&str]) -> u16 {
        let port = free_port_pair();
        let process = Command::new("redis-server")
            .args(args)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--protected-mode", "no"])
            .args(["--save", "", "--appendonly", "no"])
            // A replica syncs at once, not after the 5 s a master waits for more replicas to sync together.
            .args(["--repl-diskless-sync-delay", "0"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start redis-server");
        self.nodes.push(Node { port, process: Some(process) });
        port
    }

    async fn kill(&mut self, port: u16) {
        let node = self.nodes.iter_mut().find(|node| node.port == port).expect("one of ours");
        let mut process = node.process.take().expect("it runs");
        // SIGKILL: the node says no goodbye to the others.
        process.kill().await.expect("kill the node");
    }

    fn alive(&self) -> impl Iterator<Item = u16> + '_ {
        self.nodes.iter().filter(|node| node.process.is_some()).map(|node| node.port)
    }
}

async fn ask(port: u16, command: &[&str]) -> String {
    let output = Command::new("redis-cli").args(["-p", &port.to_string()]).args(command).output().await;
    String::from_utf8_lossy(&output.expect("redis-cli").stdout).into_owned()
}

/// Asks node `port` until `ready` holds for its answer, within [`PATIENCE`].
async fn until(port: u16, command: &[&str], ready: impl Fn(&str) -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !ready(&ask(port, command).await) {
        assert!(tokio::time::Instant::now() < deadline, "redis node {port} not ready for {command:?}");
        tokio::time::sleep(POLL).await;
    }
}

pub struct RedisCluster {
    nodes: Nodes,
}

impl RedisCluster {
    /// `masters` masters with one replica each; `None` when Redis is not installed.
    pub async fn start(masters: usize) -> Option<Self> {
        let mut nodes = Nodes::new()?;
        let ports: Vec<u16> = (0..masters * 2)
            .map(|_| {
                let port_conf = format!("nodes-{}.conf", uuid::Uuid::new_v4().simple());
                nodes.start(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-node-timeout",
                    "1000",
                    "--cluster-config-file",
                    &port_conf,
                ])
            })
            .collect();
        for &port in &ports {
            until(port, &["ping"], |reply| reply.trim() == "PONG").await;
        }
        let addresses: Vec<String> = ports.iter().map(|port| format!("127.0.0.1:{port}")).collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdout(Stdio::null())
            .status()
            .await
            .expect("redis-cli --cluster create");
        assert!(created.success(), "the cluster was created");
        for &port in &ports {
            until(port, &["cluster", "info"], |info| info.contains("cluster_state:ok")).await;
        }
        // A replica that never synced cannot take over: ready once every replica has its master's data.
        for &port in &ports {
            let synced = |info: &str| info.contains("role:master") || info.contains("master_link_status:up");
            until(port, &["info", "replication"], synced).await;
        }
        Some(Self { nodes })
    }

    /// `REDIS_URL` for the cluster: every node as a seed.
    pub fn url(&self) -> String {
        let mut nodes = self.nodes.alive().map(|port| format!("127.0.0.1:{port}"));
        let first = nodes.next().expect("a node");
        let rest: Vec<String> = nodes.map(|node| format!("node={node}")).collect();
        format!("redis-cluster://{first}?{}", rest.join("&"))
    }

    /// Every key matching `pattern`, from every live node (replicas repeat their masters' keys).
    pub async fn keys(&self, pattern: &str) -> Vec<String> {
        let mut keys = Vec::new();
        for port in self.nodes.alive() {
            let found = ask(port, &["--scan", "--pattern", pattern]).await;
            keys.extend(found.lines().filter(|line| !line.is_empty()).map(str::to_owned));
        }
        keys.sort();
        keys.dedup();
        keys
    }

    /// Kills the master serving `key`'s slot and waits until a replica serves the slot instead; returns the
    /// killed master's port.
    pub async fn kill_master_of(&mut self, key: &str) -> u16 {
        let alive = self.nodes.alive().next().expect("a live node");
        let slot: u16 = ask(alive, &["cluster", "keyslot", key]).await.trim().parse().expect("a slot");
        let master = master_of(alive, slot).await;
        self.nodes.kill(master).await;
        let survivor = self.nodes.alive().next().expect("a live node");
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let healthy = ask(survivor, &["cluster", "info"]).await.contains("cluster_state:ok");
            let serving = master_of(survivor, slot).await;
            if healthy && serving != 0 && serving != master {
                return master;
            }
            assert!(tokio::time::Instant::now() < deadline, "no replica took over slot {slot} in time");
            tokio::time::sleep(POLL).await;
        }
    }
}

/// The port of the master serving `slot` as node `port` sees the cluster; 0 when none does.
async fn master_of(port: u16, slot: u16) -> u16 {
    ask(port, &["cluster", "nodes"])
        .await
        .lines()
        .filter(|line| line.contains("master") && !line.contains("fail"))
        .find(|line| line.split(' ').skip(8).any(|range| covers(range, slot)))
        .and_then(|line| line.split(' ').nth(1)?.split('@').next()?.rsplit(':').next()?.parse().ok())
        .unwrap_or(0)
}

/// Whether a `cluster nodes` slot range (`0-5460`, or one slot) holds `slot`.
fn covers(range: &str, slot: u16) -> bool {
    let mut bounds = range.trim().split('-').map(str::parse::<u16>);
    match (bounds.next(), bounds.next()) {
        (Some(Ok(first)), Some(Ok(last))) => (first..=last).contains(&slot),
        (Some(Ok(only)), None) => only == slot,
        _ => false,
    }
}

pub struct RedisSentinel {
    nodes: Nodes,
    master: u16,
    replica: u16,
    sentinels: Vec<u16>,
}

impl RedisSentinel {
    /// A master, its replica and three Sentinels (a quorum of two); `None` when Redis is not installed.
    pub async fn start() -> Option<Self> {
        let mut nodes = Nodes::new()?;
        let master = nodes.start(&[]);
        until(master, &["ping"], |reply| reply.trim() == "PONG").await;
        let replica = nodes.start(&["--replicaof", "127.0.0.1", &master.to_string()]);
        until(replica, &["info", "replication"], |info| info.contains("master_link_status:up")).await;
        let mut sentinels = Vec::new();
        for _ in 0..3 {
            // Sentinel rewrites its configuration file: one per Sentinel.
            let conf = nodes.dir.path().join(format!("sentinel-{}.conf", uuid::Uuid::new_v4().simple()));
            write_sentinel_conf(&conf, master);
            sentinels.push(nodes.start(&[conf.to_str().expect("a UTF-8 path"), "--sentinel"]));
        }
        for &sentinel in &sentinels {
            let replicas = ["sentinel", "replicas", SERVICE];
            until(sentinel, &replicas, |known| known.contains(&replica.to_string())).await;
        }
        Some(Self { nodes, master, replica, sentinels })
    }

    /// `REDIS_URL` through the Sentinels.
    pub fn url(&self) -> String {
        let others: Vec<String> = self.sentinels[1..].iter().map(|port| format!("node=127.0.0.1:{port}")).collect();
        format!("redis-sentinel://127.0.0.1:{}?sentinelServiceName={SERVICE}&{}", self.sentinels[0], others.join("&"))
    }

    /// Kills the master and waits until the Sentinels name its replica the master.
    pub async fn kill_master(&mut self) {
        self.nodes.kill(self.master).await;
        let promoted = self.replica.to_string();
        let master = ["sentinel", "get-master-addr-by-name", SERVICE];
        until(self.sentinels[0], &master, |address| address.contains(&promoted)).await;
        until(self.replica, &["info", "replication"], |info| info.contains("role:master")).await;
    }
}

fn write_sentinel_conf(path: &Path, master: u16) {
    let conf = format!(
        "sentinel monitor {SERVICE} 127.0.0.1 {master} 2\n\
         sentinel down-after-milliseconds {SERVICE} 1000\n\
         sentinel failover-timeout {SERVICE} 5000\n\
         sentinel parallel-syncs {SERVICE} 1\n"
    );
    std::fs::write(path, conf).expect("write the Sentinel's configuration");
}

/// A port free now whose cluster bus port (port + 10000) is free too.
fn free_port_pair() -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = listener.local_addr().expect("its address").port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|dir| Path::new(dir).join(program)).find(|path| path.is_file())
}
