//! What the multi-process tests (tests/cluster.rs, tests/resp_cluster.rs)
//! set their clusters up with: short timers, and free loopback ports.

use std::net::{TcpListener, UdpSocket};

/// The timers of a test cluster: short, so that failures are noticed and
/// transactions decided within a test's patience.
pub const TIMERS: &str = r#"
[timers]
vote_timeout_ms = [300, 500]
resend_ms = [100, 200]
uncertain_ms = [200, 400]
heartbeat_ms = 100
check_ms = 50
failure_timeout_ms = 600
suspicion_timeout_ms = 600
"#;

/// `count` UDP ports free on loopback when asked.
pub fn free_udp_ports(count: usize) -> Vec<u16> {
    let sockets: Vec<UdpSocket> = (0..count)
        .map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    sockets
        .iter()
        .map(|s| s.local_addr().unwrap().port())
        .collect()
}

/// `count` TCP ports free on loopback when asked.
#[allow(dead_code)] // tests/cluster.rs serves no TCP
pub fn free_tcp_ports(count: usize) -> Vec<u16> {
    let sockets: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    sockets
        .iter()
        .map(|s| s.local_addr().unwrap().port())
        .collect()
}
