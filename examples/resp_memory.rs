//! A RESP server on the in-memory backend, for trying Redis clients against
//! haft's front end without a cluster:
//!
//! ```text
//! cargo run --example resp_memory -- [ADDR] [PASSWORD]    # default 127.0.0.1:6380
//! redis-cli -p 6380 set greeting hello
//! ```
//!
//! It runs until interrupted (Ctrl-C).

use std::sync::Arc;

use haft::resp::{MemoryBackend, RespConfig, RespServer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:6380".into());
    let mut config = RespConfig::new(listen.parse()?);
    config.requirepass = args.next();
    let server = RespServer::start(config, Arc::new(MemoryBackend::new()))?;
    println!("serving RESP on {} (memory backend)", server.local_addr());
    loop {
        std::thread::park();
    }
}
