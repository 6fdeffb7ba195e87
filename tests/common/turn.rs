//! Networks that only a TURN server joins: network namespaces, each with one veth link to this
//! machine's own namespace and no route anywhere else, and a real coturn listening on this side
//! of every link. Everything is removed when the test is done with it.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `ip` with `args`; panics with what it said when it fails.
fn ip(args: &[&str]) {
    let output = Command::new("ip")
        .args(args)
        .output()
        .expect("`ip` runs (iproute2)");
    assert!(
        output.status.success(),
        "ip {}: {} (network namespaces need root, or CAP_NET_ADMIN)",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
}

/// One namespace: its name, its own address and the address of this machine on its link.
pub struct Namespace {
    pub name: String,
    pub address: String,
    pub host: String,
    link: String,
}

impl Namespace {
    /// Whether it has a route to `address`.
    pub fn routes_to(&self, address: &str) -> bool {
        Command::new("ip")
            .args(["netns", "exec", &self.name, "ip", "route", "get", address])
            .output()
            .is_ok_and(|output| output.status.success())
    }
}

/// Namespaces made for one test; deleted (with their links) on drop.
pub struct Isolated {
    pub namespaces: Vec<Namespace>,
}

impl Isolated {
    /// `count` namespaces. Each reaches this machine's side of its link, `10.213.N.1`, and
    /// nothing else: not the other namespaces, not the machine's other addresses.
    pub fn new(count: u8) -> Self {
        // Unique per test process, so a run left over by a killed test cannot collide.
        let tag = std::process::id() % 100_000;
        let block = u8::try_from(std::process::id() % 50).unwrap_or(0) * 5;
        let mut isolated = Self {
            namespaces: Vec::new(),
        };
        for index in 0..count {
            let name = format!("cs{tag}n{index}");
            let link = format!("cs{tag}h{index}");
            let inside = format!("cs{tag}i{index}");
            let subnet = format!("10.213.{}", block + index);
            ip(&["netns", "add", &name]);
            // Pushed before the rest, so a later failure still removes it.
            isolated.namespaces.push(Namespace {
                name: name.clone(),
                address: format!("{subnet}.2"),
                host: format!("{subnet}.1"),
                link: link.clone(),
            });
            ip(&[
                "link", "add", &link, "type", "veth", "peer", "name", &inside,
            ]);
            ip(&["link", "set", &inside, "netns", &name]);
            ip(&["addr", "add", &format!("{subnet}.1/24"), "dev", &link]);
            ip(&["link", "set", &link, "up"]);
            let within = |args: &[&str]| {
                let mut full = vec!["netns", "exec", &name, "ip"];
                full.extend_from_slice(args);
                ip(&full);
            };
            within(&["addr", "add", &format!("{subnet}.2/24"), "dev", &inside]);
            within(&["link", "set", &inside, "up"]);
            within(&["link", "set", "lo", "up"]);
        }
        isolated
    }
}

impl Drop for Isolated {
    fn drop(&mut self) {
        for namespace in &self.namespaces {
            // Deleting the namespace deletes its end of the link, and with it ours.
            let _ = Command::new("ip")
                .args(["netns", "del", &namespace.name])
                .status();
            let _ = Command::new("ip")
                .args(["link", "del", &namespace.link])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A running coturn (`turnserver`) with long-term credentials, logging to a file.
pub struct Coturn {
    pub port: u16,
    pub realm: String,
    child: Child,
    log: PathBuf,
}

/// A STUN Binding request (RFC 5389): no attributes, a fixed transaction id.
const BINDING_REQUEST: [u8; 20] = [
    0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
];

impl Coturn {
    /// Starts one listening on `listen` (on one free port), relaying from `relay`, for `users`
    /// (`name`, `password`); returns once it answers a STUN Binding request on every address.
    pub fn start(dir: &Path, listen: &[&str], relay: &str, users: &[(&str, &str)]) -> Self {
        let port = UdpSocket::bind("0.0.0.0:0")
            .and_then(|socket| socket.local_addr())
            .expect("a free UDP port")
            .port();
        let log = dir.join("turnserver.log");
        let realm = "callscope".to_owned();
        let mut command = Command::new("turnserver");
        command.args(["-n", "-v", "--lt-cred-mech", "--fingerprint"]);
        command.args(["--no-cli", "--no-tls", "--no-dtls", "--simple-log"]);
        command.arg(format!("--listening-port={port}"));
        command.arg(format!("--relay-ip={relay}"));
        command.arg(format!("--realm={realm}"));
        command.arg(format!("--userdb={}", dir.join("turndb").display()));
        command.arg(format!(
            "--pidfile={}",
            dir.join("turnserver.pid").display()
        ));
        command.arg("--log-file=stdout");
        for address in listen {
            command.arg(format!("--listening-ip={address}"));
        }
        for (name, password) in users {
            command.arg(format!("--user={name}:{password}"));
        }
        let output = std::fs::File::create(&log).expect("coturn's log file");
        let child = command
            .stdout(output.try_clone().expect("coturn's log file"))
            .stderr(output)
            .spawn()
            .expect("turnserver runs (the test command installs it: apt-get install coturn)");
        let coturn = Self {
            port,
            realm,
            child,
            log,
        };
        for address in listen {
            coturn.wait_for_binding(address);
        }
        coturn
    }

    fn wait_for_binding(&self, address: &str) {
        let socket = UdpSocket::bind("0.0.0.0:0").expect("a UDP socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("a read timeout");
        let started = Instant::now();
        let mut answer = [0u8; 512];
        loop {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "coturn did not answer on {address}:{}:\n{}",
                self.port,
                self.log()
            );
            let _ = socket.send_to(&BINDING_REQUEST, (address, self.port));
            // A Binding success response, 0x0101, for our transaction.
            if let Ok((length, _)) = socket.recv_from(&mut answer)
                && length >= 20
                && answer[..2] == [0x01, 0x01]
                && answer[8..20] == BINDING_REQUEST[8..20]
            {
                return;
            }
        }
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
