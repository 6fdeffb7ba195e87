//! A real Redis for the tests of signaling nodes: `redis-server` on a free port of 127.0.0.1,
//! nothing saved to disk, stopped (or restarted, empty) by the test.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server`.
pub struct Redis {
    port: u16,
    child: Option<Child>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

impl Redis {
    /// Starts one and waits until it takes connections.
    pub fn start() -> Self {
        let mut redis = Self {
            port: free_port(),
            child: None,
        };
        redis.spawn();
        redis
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "redis-server runs (the test command installs it: apt-get install redis-server)",
            );
        self.child = Some(child);
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not listen on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (everything it held is gone).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Starts it again after [`Redis::kill`], empty.
    pub fn start_again(&mut self) {
        self.spawn();
    }

    /// The value at `key`, if any.
    pub fn get(&self, key: &str) -> Option<String> {
        let client = redis::Client::open(self.url()).ok()?;
        let mut connection = client.get_connection().ok()?;
        redis::cmd("GET").arg(key).query(&mut connection).ok()?
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}
