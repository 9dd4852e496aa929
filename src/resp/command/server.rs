//! DBSIZE, INFO and COMMAND: what the server and the cluster behind it say
//! about themselves.

use std::borrow::Cow;
use std::fmt::Write;

use bytes::Bytes;

use super::connection::REDIS_VERSION;
use super::{COMMANDS, Spec, lookup, lower};
use crate::resp::backend::ClusterInfo;
use crate::resp::error::ClientError;
use crate::resp::reply::Reply;
use crate::resp::server::Shared;

/// A server command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerCommand {
    /// DBSIZE.
    DbSize,
    /// INFO [section …], section names in lower case.
    Info(Vec<String>),
    /// COMMAND and its subcommands.
    Command(CommandQuery),
}

/// What COMMAND is asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandQuery {
    /// COMMAND: every command's description.
    All,
    /// COMMAND COUNT.
    Count,
    /// COMMAND INFO [name …]: descriptions, null for unknown names.
    Info(Vec<Bytes>),
    /// COMMAND DOCS [name …]: documentation, unknown names left out.
    Docs(Vec<Bytes>),
    /// COMMAND LIST: the names.
    List,
    /// COMMAND HELP.
    Help,
}

/// Reads the arguments after the name of the server command `name`.
pub fn parse(name: &str, args: &[Bytes]) -> Result<ServerCommand, ClientError> {
    match name {
        "dbsize" => Ok(ServerCommand::DbSize),
        "info" => Ok(ServerCommand::Info(args.iter().map(|a| lower(a)).collect())),
        "command" => parse_command(args).map(ServerCommand::Command),
        _ => Err(ClientError::Syntax),
    }
}

fn parse_command(args: &[Bytes]) -> Result<CommandQuery, ClientError> {
    let Some((subcommand, names)) = args.split_first() else {
        return Ok(CommandQuery::All);
    };
    let subcommand = lower(subcommand);
    let exact = |query: CommandQuery| {
        if names.is_empty() {
            Ok(query)
        } else {
            Err(ClientError::WrongArity(format!("command|{subcommand}")))
        }
    };
    match subcommand.as_str() {
        "count" => exact(CommandQuery::Count),
        "list" => exact(CommandQuery::List),
        "help" => exact(CommandQuery::Help),
        "info" => Ok(CommandQuery::Info(names.to_vec())),
        "docs" => Ok(CommandQuery::Docs(names.to_vec())),
        _ => Err(ClientError::UnknownSubcommand {
            command: "COMMAND",
            subcommand: String::from_utf8_lossy(&args[0]).into_owned(),
        }),
    }
}

impl ServerCommand {
    /// Answers the command; DBSIZE and some INFO sections ask the backend.
    pub async fn apply(&self, shared: &Shared) -> Reply {
        match self {
            ServerCommand::DbSize => match shared.backend.info().await {
                Ok(info) => Reply::Integer(info.keys as i64),
                Err(error) => Reply::Error(error.into()),
            },
            ServerCommand::Info(sections) => info(shared, sections).await,
            ServerCommand::Command(query) => command(query),
        }
    }
}

const SECTIONS: [&str; 4] = ["server", "clients", "keyspace", "haft"];

async fn info(shared: &Shared, asked: &[String]) -> Reply {
    let everything = asked.is_empty()
        || asked
            .iter()
            .any(|s| matches!(s.as_str(), "all" | "default" | "everything"));
    let wanted: Vec<&str> = SECTIONS
        .into_iter()
        .filter(|section| everything || asked.iter().any(|s| s == section))
        .collect();
    let cluster = if wanted.contains(&"keyspace") || wanted.contains(&"haft") {
        match shared.backend.info().await {
            Ok(info) => Some(info),
            Err(error) => return Reply::Error(error.into()),
        }
    } else {
        None
    };
    let mut text = String::new();
    for section in wanted {
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        let lines = match (section, &cluster) {
            ("server", _) => server_section(shared),
            ("clients", _) => clients_section(shared),
            ("keyspace", Some(info)) => keyspace_section(info),
            ("haft", Some(info)) => haft_section(shared, info),
            _ => continue,
        };
        let mut title = section.to_owned();
        title[..1].make_ascii_uppercase();
        let _ = write!(text, "# {title}\r\n");
        for (name, value) in lines {
            let _ = write!(text, "{name}:{value}\r\n");
        }
    }
    Reply::Verbatim(text)
}

type Lines = Vec<(&'static str, String)>;

fn server_section(shared: &Shared) -> Lines {
    let uptime = shared.started.elapsed().as_secs();
    vec![
        ("redis_version", REDIS_VERSION.into()),
        ("haft_version", env!("CARGO_PKG_VERSION").into()),
        ("redis_mode", "standalone".into()),
        (
            "os",
            format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        ),
        ("arch_bits", (usize::BITS).to_string()),
        ("process_id", std::process::id().to_string()),
        ("tcp_port", shared.local_addr.port().to_string()),
        ("uptime_in_seconds", uptime.to_string()),
        ("uptime_in_days", (uptime / 86_400).to_string()),
        ("max_bulk_bytes", shared.config.max_bulk_bytes.to_string()),
    ]
}

fn clients_section(shared: &Shared) -> Lines {
    vec![
        ("connected_clients", shared.connected_clients().to_string()),
        ("maxclients", shared.config.max_clients.to_string()),
        ("blocked_clients", "0".into()),
    ]
}

fn keyspace_section(info: &ClusterInfo) -> Lines {
    if info.keys == 0 {
        return vec![];
    }
    vec![("db0", format!("keys={},expires=0,avg_ttl=0", info.keys))]
}

fn haft_section(shared: &Shared, info: &ClusterInfo) -> Lines {
    vec![
        ("epoch", info.epoch.to_string()),
        ("members", info.members.len().to_string()),
        ("member_list", info.members.join(",")),
        ("commits", info.commits.to_string()),
        ("aborts", info.aborts.to_string()),
        ("resp_retries", shared.retries().to_string()),
    ]
}

fn command(query: &CommandQuery) -> Reply {
    match query {
        CommandQuery::All => Reply::Array(COMMANDS.iter().map(describe).collect()),
        CommandQuery::Count => Reply::Integer(COMMANDS.len() as i64),
        CommandQuery::List => Reply::Array(COMMANDS.iter().map(|s| Reply::text(s.name)).collect()),
        CommandQuery::Info(names) if names.is_empty() => {
            Reply::Array(COMMANDS.iter().map(describe).collect())
        }
        CommandQuery::Info(names) => Reply::Array(
            names
                .iter()
                .map(|name| lookup(name).map_or(Reply::Null, describe))
                .collect(),
        ),
        CommandQuery::Docs(names) => {
            let specs: Vec<&Spec> = if names.is_empty() {
                COMMANDS.iter().collect()
            } else {
                names.iter().filter_map(|name| lookup(name)).collect()
            };
            Reply::Map(
                specs
                    .into_iter()
                    .map(|spec| (Reply::text(spec.name), docs(spec)))
                    .collect(),
            )
        }
        CommandQuery::Help => Reply::Array(
            [
                "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "(no subcommand)",
                "    Return details about all commands.",
                "COUNT",
                "    Return the total number of commands.",
                "DOCS [<command-name> ...]",
                "    Return documentary information about commands.",
                "INFO [<command-name> ...]",
                "    Return details about the given commands, or all of them.",
                "LIST",
                "    Return the names of all commands.",
                "HELP",
                "    Print this help.",
            ]
            .into_iter()
            .map(|line| Reply::Status(Cow::Borrowed(line)))
            .collect(),
        ),
    }
}

fn status_list(items: impl IntoIterator<Item = String>) -> Reply {
    Reply::Array(
        items
            .into_iter()
            .map(|s| Reply::Status(Cow::Owned(s)))
            .collect(),
    )
}

/// COMMAND INFO's ten fields: name, arity, flags, first key, last key, step,
/// ACL categories, tips, key specifications, subcommands.
fn describe(spec: &Spec) -> Reply {
    let mut categories = vec![format!("@{}", category(spec.group))];
    for (flag, category) in [
        ("write", "@write"),
        ("readonly", "@read"),
        ("fast", "@fast"),
    ] {
        if spec.flags.contains(&flag) {
            categories.push(category.to_owned());
        }
    }
    Reply::Array(vec![
        Reply::text(spec.name),
        Reply::Integer(spec.arity),
        status_list(spec.flags.iter().map(|f| (*f).to_owned())),
        Reply::Integer(spec.first_key),
        Reply::Integer(spec.last_key),
        Reply::Integer(spec.step),
        status_list(categories),
        Reply::Array(vec![]),
        Reply::Array(vec![]),
        Reply::Array(vec![]),
    ])
}

/// Redis's ACL category for a command group.
fn category(group: &str) -> &str {
    match group {
        "generic" => "keyspace",
        "transactions" => "transaction",
        other => other,
    }
}

fn docs(spec: &Spec) -> Reply {
    let field = |name: &'static str, value: &str| (Reply::text(name), Reply::text(value));
    Reply::Map(vec![
        field("summary", spec.summary),
        field("since", spec.since),
        field("group", spec.group),
    ])
}
