//! A node's configuration: from a TOML file or from flags, validated with
//! errors that name what is wrong and how to fix it.
//!
//! ```toml
//! id = 1
//! listen = "127.0.0.1:7001"
//! data = "data/1"
//! # replicas = 3                    # nodes holding each key (at most the number of nodes)
//! # allow_fault_injection = false   # tests only: lets a client cut peers off
//! # vnodes = 64
//! # cluster_key_file = "cluster.key" # HMAC-SHA256 tags on every datagram (the same file on every node)
//! # resp = "127.0.0.1:6380"         # serve Redis clients here (RESP2 and RESP3)
//! # requirepass = "secret"          # Redis clients must AUTH first
//! # auto_remove_after_ms = 30000    # remove a member the detector has held dead this long
//!
//! [peers]
//! 2 = "127.0.0.1:7002"
//! 3 = "127.0.0.1:7003"
//!
//! [timers]                          # every field optional; these are the defaults
//! vote_timeout_ms = [1000, 1500]    # a range: each timer draws its duration in it
//! resend_ms = [200, 400]
//! uncertain_ms = [500, 1000]
//! heartbeat_ms = 200
//! check_ms = 100
//! failure_timeout_ms = 1000
//! suspicion_timeout_ms = 1000
//! ```

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::codec::{ClusterKey, KeyError};
use crate::NodeId;
use crate::node::{ANSWER_CAPACITY, NodeConfig, NodeError, NodeTiming};

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read the configuration file {path}: {source}; check the path")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML of the expected shape.
    #[error("the configuration file {path} is invalid: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the TOML parser said.
        message: String,
    },
    /// A required setting is missing.
    #[error("`{0}` is missing; set it in the configuration file or with its flag")]
    Missing(&'static str),
    /// An address could not be parsed or resolved.
    #[error(
        "{what} `{value}` is not a usable address ({reason}); write it as HOST:PORT, e.g. 127.0.0.1:7001"
    )]
    BadAddress {
        /// Which setting.
        what: String,
        /// The value given.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// A `--peer` flag is not ID=ADDRESS.
    #[error("peer `{0}` is not ID=ADDRESS; write e.g. --peer 2=127.0.0.1:7002")]
    BadPeer(String),
    /// A peer id is not a node id.
    #[error("peer id `{0}` is not a node id: node ids are whole numbers from 0 to {max}", max = u16::MAX)]
    BadPeerId(String),
    /// This node's id is out of range.
    #[error("node id {0} is too large: node ids are whole numbers from 0 to {max}", max = u16::MAX)]
    BadId(u64),
    /// `replicas` is zero.
    #[error("`replicas` must be at least 1")]
    NoReplicas,
    /// A peer is listed twice.
    #[error("peer {0} is listed twice; list each peer once")]
    DuplicatePeer(u16),
    /// The node lists itself among its peers.
    #[error("node {0} lists itself among its peers; peers are the other nodes only")]
    OwnIdInPeers(u16),
    /// Two nodes share an address.
    #[error("nodes {0} and {1} have the same address {2}; give each node its own port")]
    SharedAddress(u16, u16, SocketAddr),
    /// The data directory exists but is not a directory.
    #[error("the data directory {0} exists and is not a directory; choose another path")]
    DataNotDirectory(PathBuf),
    /// A timer setting is unusable.
    #[error("timer `{name}`: {reason}")]
    BadTimer {
        /// The timer.
        name: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The node refused the settings.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The cluster key could not be loaded.
    #[error(transparent)]
    ClusterKey(#[from] KeyError),
    /// `requirepass` is set but there is no RESP endpoint to protect.
    #[error(
        "`requirepass` is set but `resp` is not; set resp = \"HOST:PORT\" (or --resp) to serve Redis clients"
    )]
    PasswordWithoutResp,
    /// `join` is given together with peers.
    #[error(
        "`join` and `peers` exclude each other: a joining node learns its peers from the cluster; remove the peers"
    )]
    JoinWithPeers,
    /// `requirepass` is empty.
    #[error(
        "`requirepass` is empty; remove it to let Redis clients in without AUTH, or set a password"
    )]
    EmptyPassword,
}

/// Timer settings, in milliseconds. Ranges are `[min, max]`: each time the
/// timer is armed, its duration is drawn uniformly in the range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimerConfig {
    /// Coordinator: the wait for votes before aborting.
    pub vote_timeout_ms: [u64; 2],
    /// Coordinator: the period of resending an unacknowledged decision.
    pub resend_ms: [u64; 2],
    /// Participant: the wait, once prepared, before asking for the outcome.
    pub uncertain_ms: [u64; 2],
    /// Detector: the heartbeat period.
    pub heartbeat_ms: u64,
    /// Detector: the period of running the estimators.
    pub check_ms: u64,
    /// Detector: the silence after which a peer is suspected.
    pub failure_timeout_ms: u64,
    /// Detector: how long a suspicion lasts before the peer is declared Dead.
    pub suspicion_timeout_ms: u64,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            vote_timeout_ms: [1000, 1500],
            resend_ms: [200, 400],
            uncertain_ms: [500, 1000],
            heartbeat_ms: 200,
            check_ms: 100,
            failure_timeout_ms: 1000,
            suspicion_timeout_ms: 1000,
        }
    }
}

impl TimerConfig {
    /// The timing of the node actor.
    pub fn timing(&self) -> Result<NodeTiming, ConfigError> {
        fn range(name: &'static str, [min, max]: [u64; 2]) -> Result<Range<Duration>, ConfigError> {
            if min == 0 {
                return Err(ConfigError::BadTimer {
                    name,
                    reason: "the minimum is 0 ms; give a positive number of milliseconds",
                });
            }
            if min > max {
                return Err(ConfigError::BadTimer {
                    name,
                    reason: "the minimum exceeds the maximum; write [min, max]",
                });
            }
            Ok(Duration::from_millis(min)..Duration::from_millis(max))
        }
        Ok(NodeTiming {
            vote_timeout: range("vote_timeout_ms", self.vote_timeout_ms)?,
            resend_every: range("resend_ms", self.resend_ms)?,
            uncertain_after: range("uncertain_ms", self.uncertain_ms)?,
            heartbeat_interval: self.heartbeat_ms,
            check_interval: self.check_ms,
            failure_timeout: self.failure_timeout_ms,
            suspicion_timeout: self.suspicion_timeout_ms,
        })
    }
}

/// The configuration as written: addresses and peer ids still text.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// This node's id.
    pub id: Option<u64>,
    /// The UDP address to listen on (port 0: any free port).
    pub listen: Option<String>,
    /// The other nodes: id → address.
    #[serde(default)]
    pub peers: BTreeMap<String, String>,
    /// The directory of the node's durable record.
    pub data: Option<PathBuf>,
    /// Virtual nodes per node on the ring.
    pub vnodes: Option<u32>,
    /// How many nodes hold each key (default 3, at most the number of nodes).
    pub replicas: Option<usize>,
    /// Accept the fault-injection request (tests only).
    #[serde(default)]
    pub allow_fault_injection: bool,
    /// A file holding the cluster key: every datagram is then tagged and
    /// checked with HMAC-SHA256 under it.
    pub cluster_key_file: Option<PathBuf>,
    /// Where to serve Redis clients (RESP), if anywhere.
    pub resp: Option<String>,
    /// The password Redis clients must give with AUTH.
    pub requirepass: Option<String>,
    /// Join the running cluster through the member at this address (instead
    /// of listing peers): the node starts empty and becomes a member once a
    /// ring change adds it.
    pub join: Option<String>,
    /// Remove a member the failure detector has held dead this long, in ms
    /// (absent: never; see [`NodeConfig::auto_remove_after`]).
    pub auto_remove_after_ms: Option<u64>,
    /// Timer settings.
    #[serde(default)]
    pub timers: TimerConfig,
}

/// A validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// This node's id.
    pub id: u16,
    /// The address to listen on.
    pub listen: SocketAddr,
    /// The other nodes and their addresses.
    pub peers: BTreeMap<u16, SocketAddr>,
    /// The directory of the node's durable record.
    pub data: PathBuf,
    /// Virtual nodes per node on the ring.
    pub vnodes: u32,
    /// How many nodes hold each key.
    pub replicas: usize,
    /// Whether a client may cut this node off from chosen peers (tests only).
    pub allow_fault_injection: bool,
    /// The node's timing.
    pub timing: NodeTiming,
    /// The cluster key, if traffic is authenticated.
    pub cluster_key: Option<ClusterKey>,
    /// Where Redis clients connect, if the node serves them.
    pub resp: Option<SocketAddr>,
    /// The password Redis clients must give with AUTH.
    pub requirepass: Option<String>,
    /// The member to join the cluster through, if this node joins one.
    pub join: Option<SocketAddr>,
    /// How long a member stays dead before this node removes it, in ms.
    pub auto_remove_after: Option<u64>,
}

/// Virtual nodes per node unless configured.
pub const DEFAULT_VNODES: u32 = 64;

/// Nodes holding each key unless configured.
pub const DEFAULT_REPLICAS: usize = 3;

fn address(what: String, value: &str) -> Result<SocketAddr, ConfigError> {
    let bad = |reason: String| ConfigError::BadAddress {
        what: what.clone(),
        value: value.to_owned(),
        reason,
    };
    let mut addrs = value.to_socket_addrs().map_err(|e| bad(e.to_string()))?;
    addrs
        .next()
        .ok_or_else(|| bad("it resolves to no address".into()))
}

/// Parses `ID=ADDRESS`, as given to `--peer`.
pub fn parse_peer(text: &str) -> Result<(String, String), ConfigError> {
    match text.split_once('=') {
        Some((id, addr)) if !id.trim().is_empty() && !addr.trim().is_empty() => {
            Ok((id.trim().to_owned(), addr.trim().to_owned()))
        }
        _ => Err(ConfigError::BadPeer(text.to_owned())),
    }
}

impl RawConfig {
    /// Reads a TOML configuration file.
    pub fn from_file(path: &Path) -> Result<RawConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        RawConfig::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses TOML text; the error is the parser's message.
    pub fn from_toml(text: &str) -> Result<RawConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())
    }

    /// Adds a peer given as `ID=ADDRESS`; refused if that id is already listed.
    pub fn add_peer(&mut self, text: &str) -> Result<(), ConfigError> {
        let (id, addr) = parse_peer(text)?;
        if self.peers.contains_key(&id) {
            let id = id.parse().map_err(|_| ConfigError::BadPeerId(id))?;
            return Err(ConfigError::DuplicatePeer(id));
        }
        self.peers.insert(id, addr);
        Ok(())
    }

    /// Checks every setting.
    pub fn validate(self) -> Result<Config, ConfigError> {
        let id = self.id.ok_or(ConfigError::Missing("id"))?;
        let id = u16::try_from(id).map_err(|_| ConfigError::BadId(id))?;
        if self.replicas == Some(0) {
            return Err(ConfigError::NoReplicas);
        }
        let listen_text = self.listen.ok_or(ConfigError::Missing("listen"))?;
        let listen = address("the listen address".into(), &listen_text)?;
        let data = self.data.ok_or(ConfigError::Missing("data"))?;
        if data.exists() && !data.is_dir() {
            return Err(ConfigError::DataNotDirectory(data));
        }
        let mut peers = BTreeMap::new();
        for (peer_text, addr_text) in &self.peers {
            let peer: u16 = peer_text
                .parse()
                .map_err(|_| ConfigError::BadPeerId(peer_text.clone()))?;
            if peer == id {
                return Err(ConfigError::OwnIdInPeers(id));
            }
            let addr = address(format!("the address of peer {peer}"), addr_text)?;
            if peers.insert(peer, addr).is_some() {
                // "02" and "2" are one peer.
                return Err(ConfigError::DuplicatePeer(peer));
            }
        }
        let mut by_address: BTreeMap<SocketAddr, u16> = BTreeMap::new();
        for (&node, &addr) in peers.iter().chain([(&id, &listen)]) {
            if addr.port() == 0 && node == id {
                continue; // Any free port: cannot clash.
            }
            if let Some(other) = by_address.insert(addr, node) {
                return Err(ConfigError::SharedAddress(
                    other.min(node),
                    other.max(node),
                    addr,
                ));
            }
        }
        let timing = self.timers.timing()?;
        let cluster_key = match &self.cluster_key_file {
            Some(path) => Some(ClusterKey::from_file(path)?),
            None => None,
        };
        let resp = match &self.resp {
            Some(text) => Some(address("the RESP address".into(), text)?),
            None => None,
        };
        match self.requirepass.as_deref() {
            Some("") => return Err(ConfigError::EmptyPassword),
            Some(_) if resp.is_none() => return Err(ConfigError::PasswordWithoutResp),
            _ => {}
        }
        let join = match &self.join {
            Some(_) if !peers.is_empty() => return Err(ConfigError::JoinWithPeers),
            Some(text) => Some(address("the member to join through".into(), text)?),
            None => None,
        };
        let vnodes = self.vnodes.unwrap_or(DEFAULT_VNODES);
        let config = Config {
            id,
            listen,
            peers,
            data,
            vnodes,
            replicas: self.replicas.unwrap_or(DEFAULT_REPLICAS),
            allow_fault_injection: self.allow_fault_injection,
            timing,
            cluster_key,
            resp,
            requirepass: self.requirepass,
            join,
            auto_remove_after: self.auto_remove_after_ms,
        };
        // Let the node check the rest (detector settings, ring).
        let mut out = crate::node::NodeOutput::at(0);
        crate::node::Node::recover(&config.node_config(), Default::default(), &mut out)?;
        Ok(config)
    }
}

impl Config {
    /// Every node id of the cluster, this node's included.
    pub fn nodes(&self) -> Vec<u16> {
        let mut nodes: Vec<u16> = self.peers.keys().copied().collect();
        nodes.push(self.id);
        nodes.sort_unstable();
        nodes
    }

    /// The node machine's configuration.
    pub fn node_config(&self) -> NodeConfig {
        NodeConfig {
            me: NodeId(self.id),
            members: self.nodes().into_iter().map(NodeId).collect(),
            vnodes: self.vnodes,
            replicas: self.replicas,
            timing: self.timing.clone(),
            answer_capacity: ANSWER_CAPACITY,
            addresses: self
                .peers
                .iter()
                .map(|(id, addr)| (NodeId(*id), addr.to_string()))
                .chain(std::iter::once((NodeId(self.id), self.listen.to_string())))
                .collect(),
            join: self.join.is_some(),
            auto_remove_after: self.auto_remove_after,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawConfig {
        let mut raw = RawConfig {
            id: Some(1),
            listen: Some("127.0.0.1:7001".into()),
            data: Some(std::env::temp_dir().join("haft-config-test")),
            ..RawConfig::default()
        };
        raw.add_peer("2=127.0.0.1:7002").unwrap();
        raw.add_peer("3=127.0.0.1:7003").unwrap();
        raw
    }

    #[test]
    fn a_good_configuration_validates() {
        let config = raw().validate().unwrap();
        assert_eq!(config.nodes(), [1, 2, 3]);
        assert_eq!(config.peers[&3], "127.0.0.1:7003".parse().unwrap());
    }

    #[test]
    fn toml_and_flags_agree() {
        let text = r#"
            id = 1
            listen = "127.0.0.1:7001"
            data = "/tmp/haft-config-test"
            resp = "127.0.0.1:6380"
            requirepass = "pw"
            auto_remove_after_ms = 5000
            [peers]
            2 = "127.0.0.1:7002"
            3 = "127.0.0.1:7003"
            [timers]
            vote_timeout_ms = [300, 400]
        "#;
        let config = RawConfig::from_toml(text).unwrap().validate().unwrap();
        assert_eq!(config.nodes(), [1, 2, 3]);
        assert_eq!(config.resp, Some("127.0.0.1:6380".parse().unwrap()));
        assert_eq!(config.requirepass.as_deref(), Some("pw"));
        assert!(config.cluster_key.is_none());
        assert_eq!(config.node_config().auto_remove_after, Some(5000));
        assert_eq!(
            config.timing.vote_timeout,
            Duration::from_millis(300)..Duration::from_millis(400)
        );
    }

    #[test]
    fn each_mistake_gets_its_error() {
        let check = |mutate: &dyn Fn(&mut RawConfig), expected: &str| {
            let mut config = raw();
            mutate(&mut config);
            let error = config.validate().unwrap_err().to_string();
            assert!(
                error.contains(expected),
                "{error:?} does not say {expected:?}"
            );
        };
        check(&|c| c.id = None, "`id` is missing");
        check(&|c| c.data = None, "`data` is missing");
        check(
            &|c| c.listen = Some("nowhere".into()),
            "not a usable address",
        );
        check(
            &|c| {
                c.peers.insert("x".into(), "127.0.0.1:1".into());
            },
            "peer id `x`",
        );
        check(
            &|c| {
                c.peers.insert("1".into(), "127.0.0.1:1".into());
            },
            "lists itself",
        );
        check(
            &|c| {
                c.peers.insert("02".into(), "127.0.0.1:9".into());
            },
            "listed twice",
        );
        check(
            &|c| {
                c.peers.insert("4".into(), "127.0.0.1:7002".into());
            },
            "same address",
        );
        check(&|c| c.timers.resend_ms = [5, 1], "exceeds the maximum");
        check(&|c| c.timers.heartbeat_ms = 0, "heartbeat_interval");
        check(
            &|c| c.auto_remove_after_ms = Some(1999),
            "auto_remove_after (1999 ms) is shorter",
        );
        check(&|c| c.requirepass = Some("pw".into()), "`resp` is not");
        check(
            &|c| {
                c.resp = Some("127.0.0.1:6380".into());
                c.requirepass = Some(String::new());
            },
            "`requirepass` is empty",
        );
        check(&|c| c.resp = Some("nowhere".into()), "the RESP address");
        check(
            &|c| c.cluster_key_file = Some("/nonexistent/cluster.key".into()),
            "cannot read the cluster key file /nonexistent/cluster.key",
        );
        assert!(matches!(
            raw().add_peer("2=127.0.0.1:9"),
            Err(ConfigError::DuplicatePeer(2))
        ));
        assert!(matches!(
            raw().add_peer("2:127.0.0.1"),
            Err(ConfigError::BadPeer(_))
        ));
        assert!(
            RawConfig::from_toml("id = 1\nbogus = 2")
                .unwrap_err()
                .contains("bogus")
        );
    }
}
