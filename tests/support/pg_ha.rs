//! A PostgreSQL primary and its streaming standby of a test's own: a fresh cluster made with `initdb`
//! (Debian's PostgreSQL 15 binaries, run as the `postgres` user), and a standby made from it with
//! `pg_basebackup -R`. A test can pause the standby's replay (a lagging replica), stop it (a replica away),
//! or promote it.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::Command,
};

/// A primary and its standby; both stopped when dropped.
pub struct PgPair {
    bin: PathBuf,
    dir: tempfile::TempDir,
    primary: u16,
    standby: u16,
}

impl PgPair {
    /// `None` when PostgreSQL's server binaries or the `postgres` user are missing.
    pub fn start() -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
            .find(|bin| bin.join("initdb").is_file() && bin.join("pg_basebackup").is_file())?;
        let dir = tempfile::tempdir().expect("a directory for the clusters");
        if !as_postgres(Command::new("true")).status().is_ok_and(|status| status.success()) {
            eprintln!("skipped: cannot run commands as the postgres user");
            return None;
        }
        let owned = Command::new("chown").arg("postgres").arg(dir.path()).status().expect("chown");
        assert!(owned.success(), "the clusters' directory belongs to postgres");
        let pair = Self { bin, primary: free_port(), standby: free_port(), dir };
        let primary = pair.dir.path().join("primary");
        pair.run("initdb", &["-D", path(&primary), "-A", "trust", "-U", "postgres", "--no-sync"]);
        let hba = primary.join("pg_hba.conf");
        let mut rules = std::fs::read_to_string(&hba).expect("pg_hba.conf");
        rules.push_str("host replication all 127.0.0.1/32 trust\n");
        std::fs::write(&hba, rules).expect("allow replication");
        pair.start_server(&primary, pair.primary);
        let standby = pair.dir.path().join("standby");
        let port = pair.primary.to_string();
        pair.run(
            "pg_basebackup",
            &["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-D", path(&standby), "-R", "-X", "stream"],
        );
        pair.start_server(&standby, pair.standby);
        Some(pair)
    }

    pub fn primary_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.primary)
    }

    pub fn standby_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.standby)
    }

    pub fn primary_addr(&self) -> std::net::SocketAddr {
        ([127, 0, 0, 1], self.primary).into()
    }

    pub fn standby_addr(&self) -> std::net::SocketAddr {
        ([127, 0, 0, 1], self.standby).into()
    }

    /// Commits on the primary wait until the standby has them (`synchronous_standby_names = '*'`): a
    /// failover then loses no acknowledged commit.
    pub fn replicate_synchronously(&self) {
        let port = self.primary.to_string();
        let set = "ALTER SYSTEM SET synchronous_standby_names = '*'";
        let psql = Command::new("psql")
            .args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-d", "postgres", "-c", set])
            .args(["-c", "SELECT pg_reload_conf()"])
            .output()
            .expect("psql");
        assert!(psql.status.success(), "{}", String::from_utf8_lossy(&psql.stderr));
    }

    /// The primary dies (stopped at once, as by a crash) and the standby is promoted in its place.
    pub fn fail_over(&self) {
        self.run("pg_ctl", &["-D", path(&self.dir.path().join("primary")), "-m", "immediate", "-w", "stop"]);
        self.run("pg_ctl", &["-D", path(&self.dir.path().join("standby")), "-w", "promote"]);
    }

    /// Stops the standby at once (a replica gone away).
    pub fn stop_standby(&self) {
        self.run("pg_ctl", &["-D", path(&self.dir.path().join("standby")), "-m", "immediate", "-w", "stop"]);
    }

    fn start_server(&self, data: &Path, port: u16) {
        let options = format!("-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", path(self.dir.path()));
        let log = data.with_extension("log");
        self.run("pg_ctl", &["-D", path(data), "-o", &options, "-l", path(&log), "-w", "start"]);
    }

    fn run(&self, program: &str, args: &[&str]) {
        let mut command = Command::new(self.bin.join(program));
        command.args(args);
        let output = as_postgres(command).output().expect("run a PostgreSQL program");
        assert!(output.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    }
}

impl Drop for PgPair {
    fn drop(&mut self) {
        for data in ["standby", "primary"] {
            let data = self.dir.path().join(data);
            let mut stop = Command::new(self.bin.join("pg_ctl"));
            stop.args(["-D", path(&data), "-m", "immediate", "stop"]);
            // Already stopped (the standby a test took away) is fine.
            let _ = as_postgres(stop).output();
        }
    }
}

/// `command` as the `postgres` user: PostgreSQL refuses to run as root.
fn as_postgres(command: Command) -> Command {
    let mut wrapped = Command::new("runuser");
    wrapped.args(["-u", "postgres", "--"]).arg(command.get_program()).args(command.get_args());
    wrapped
}

fn path(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("its address").port()
}
