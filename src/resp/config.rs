//! The RESP server's settings, with the defaults and limits it documents.
//!
//! Embedded in a node's configuration or built in code:
//!
//! ```toml
//! listen = "127.0.0.1:6380"       # where Redis clients connect
//! # requirepass = "secret"        # clients must AUTH first (as in redis.conf)
//! # max_clients = 10000           # further connections get "-ERR max number of clients reached"
//! # max_bulk_bytes = 67108864     # the largest argument or value (64 MiB; at least 16 MiB)
//! # max_request_bytes = 268435456 # the largest request (256 MiB)
//! # threads = 0                   # runtime worker threads; 0 = half the cores, at least 1
//! # shutdown_grace_ms = 5000      # how long shutdown waits for commands in progress
//!
//! [retry]                         # conflicts are retried, never shown to clients
//! attempts = 100
//! budget_ms = 10000
//! backoff_ms = [1, 50]
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::ServerError;

/// 1 MiB.
const MIB: usize = 1024 * 1024;

/// The smallest `max_bulk_bytes` accepted: values of 16 MiB must always fit.
pub const MIN_BULK_BYTES: usize = 16 * MIB;

/// The RESP server's settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RespConfig {
    /// The address Redis clients connect to (port 0 picks a free one).
    pub listen: SocketAddr,
    /// The password clients must give with AUTH (or HELLO … AUTH) before any
    /// other command, as Redis's `requirepass`; `None` lets everyone in.
    pub requirepass: Option<String>,
    /// Connections served at once; one more is answered with Redis's
    /// "max number of clients reached" and closed.
    pub max_clients: usize,
    /// The largest argument, hence the largest value, in bytes (Redis's
    /// `proto-max-bulk-len`); at least [`MIN_BULK_BYTES`].
    pub max_bulk_bytes: usize,
    /// The largest request, all arguments together, in bytes (Redis's
    /// `client-query-buffer-limit`); at least `max_bulk_bytes`.
    pub max_request_bytes: usize,
    /// Worker threads of the server's runtime; 0 means half the cores, at
    /// least one (see [`RespConfig::worker_threads`]).
    pub threads: usize,
    /// How long a shutdown waits for commands in progress before it drops them.
    pub shutdown_grace_ms: u64,
    /// How refused transactions are retried.
    pub retry: RetryConfig,
}

impl Default for RespConfig {
    fn default() -> Self {
        RespConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 6380)),
            requirepass: None,
            max_clients: 10_000,
            max_bulk_bytes: 64 * MIB,
            max_request_bytes: 256 * MIB,
            threads: 0,
            shutdown_grace_ms: 5_000,
            retry: RetryConfig::default(),
        }
    }
}

/// How a transaction the backend refused (a conflict, or an abort that wrote
/// nothing) is retried: re-read, recompute, re-commit, after a randomized
/// backoff, until it commits or the budget runs out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// The most commit attempts of one command or EXEC.
    pub attempts: u32,
    /// The most time spent retrying one command or EXEC, in milliseconds.
    pub budget_ms: u64,
    /// `[min, max]` backoff in milliseconds: the n-th retry waits a random time
    /// up to `min × 2ⁿ`, capped at `max`.
    pub backoff_ms: [u64; 2],
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            attempts: 100,
            budget_ms: 10_000,
            backoff_ms: [1, 50],
        }
    }
}

impl RetryConfig {
    /// The longest wait before the `retry`-th retry (counting from 0).
    pub fn backoff_cap(&self, retry: u32) -> Duration {
        let [min, max] = self.backoff_ms;
        let grown = min.saturating_mul(1u64.checked_shl(retry.min(32)).unwrap_or(u64::MAX));
        Duration::from_millis(grown.clamp(min, max).max(1))
    }
}

impl RespConfig {
    /// The worker threads the server runs: `threads`, or if it is 0 half the
    /// cores, at least one. The node's own threads (its event loop, flusher
    /// and, while large values arrive, drainer) need the rest: on 2 cores one
    /// worker served more requests than two in 22 of 24 comparisons of
    /// `redis-benchmark -c 64`,
    /// pipelined or not, up to 19% more (verification/REPORT.md, "Redis
    /// protocol").
    pub fn worker_threads(&self) -> usize {
        if self.threads > 0 {
            return self.threads;
        }
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        (cores / 2).max(1)
    }

    /// Settings with the defaults, listening on `listen`.
    pub fn new(listen: SocketAddr) -> Self {
        RespConfig {
            listen,
            ..RespConfig::default()
        }
    }

    /// Refuses settings the server cannot honour, saying which and why.
    pub fn validate(&self) -> Result<(), ServerError> {
        let refuse = |message: String| Err(ServerError::Config(message));
        if self.max_clients == 0 {
            return refuse("max_clients is 0; allow at least one client".into());
        }
        if self.max_bulk_bytes < MIN_BULK_BYTES {
            return refuse(format!(
                "max_bulk_bytes is {}; values of 16 MiB must fit, so use at least {MIN_BULK_BYTES}",
                self.max_bulk_bytes
            ));
        }
        if self.max_request_bytes < self.max_bulk_bytes {
            return refuse(format!(
                "max_request_bytes ({}) is less than max_bulk_bytes ({}); a request holds at least one value",
                self.max_request_bytes, self.max_bulk_bytes
            ));
        }
        if self.requirepass.as_deref() == Some("") {
            return refuse(
                "requirepass is empty; remove it to disable AUTH, or set a password".into(),
            );
        }
        if self.retry.attempts == 0 {
            return refuse("retry.attempts is 0; every transaction needs one attempt".into());
        }
        let [min, max] = self.retry.backoff_ms;
        if min > max {
            return refuse(format!("retry.backoff_ms [{min}, {max}] has min > max"));
        }
        Ok(())
    }

    /// The shutdown grace period.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_are_as_set_or_half_the_cores() {
        let mut config = RespConfig::new("127.0.0.1:0".parse().unwrap());
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(config.worker_threads(), (cores / 2).max(1));
        config.threads = 3;
        assert_eq!(config.worker_threads(), 3);
    }

    #[test]
    fn defaults_are_valid_and_parse_from_an_empty_table() {
        assert!(RespConfig::default().validate().is_ok());
        let parsed: RespConfig = toml::from_str("").expect("empty table");
        assert_eq!(parsed, RespConfig::default());
        let parsed: RespConfig = toml::from_str(
            "listen = \"0.0.0.0:7000\"\nrequirepass = \"pw\"\n[retry]\nattempts = 3\n",
        )
        .expect("parses");
        assert_eq!(parsed.requirepass.as_deref(), Some("pw"));
        assert_eq!(parsed.retry.attempts, 3);
        assert!(
            toml::from_str::<RespConfig>("maxclients = 3").is_err(),
            "unknown keys are refused"
        );
    }

    #[test]
    fn unusable_settings_are_refused() {
        let small = RespConfig {
            max_bulk_bytes: MIB,
            ..RespConfig::default()
        };
        assert!(small.validate().is_err());
        let empty_password = RespConfig {
            requirepass: Some(String::new()),
            ..RespConfig::default()
        };
        assert!(empty_password.validate().is_err());
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let retry = RetryConfig::default();
        assert_eq!(retry.backoff_cap(0), Duration::from_millis(1));
        assert_eq!(retry.backoff_cap(3), Duration::from_millis(8));
        assert_eq!(retry.backoff_cap(10), Duration::from_millis(50));
        assert_eq!(retry.backoff_cap(u32::MAX), Duration::from_millis(50));
    }
}
