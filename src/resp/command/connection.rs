//! PING, ECHO, HELLO, AUTH, SELECT, QUIT and CLIENT: commands about the
//! connection itself, carried out on its [`Session`].

use std::borrow::Cow;

use bytes::Bytes;

use super::{integer_argument, lower, parse_integer};
use crate::resp::error::ClientError;
use crate::resp::reply::{Protocol, Reply};
use crate::resp::session::{After, Session};

/// The Redis version whose commands haft's follow, reported by HELLO and INFO
/// for clients that adapt to the server's version.
pub const REDIS_VERSION: &str = "7.0.0";

/// A connection command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectionCommand {
    /// PING [message].
    Ping(Option<Bytes>),
    /// ECHO message.
    Echo(Bytes),
    /// HELLO [protover [AUTH username password] [SETNAME name]].
    Hello {
        /// The protocol to switch to, if given.
        protocol: Option<Protocol>,
        /// AUTH's user name and password.
        auth: Option<(Bytes, Bytes)>,
        /// SETNAME's name.
        name: Option<Bytes>,
    },
    /// AUTH [username] password.
    Auth {
        /// The user: only `default` exists.
        user: Option<Bytes>,
        /// The password.
        password: Bytes,
    },
    /// SELECT 0.
    Select,
    /// QUIT: reply OK, then close.
    Quit,
    /// CLIENT subcommand.
    Client(ClientCommand),
}

/// A CLIENT subcommand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientCommand {
    /// CLIENT SETNAME name (empty clears it).
    SetName(Bytes),
    /// CLIENT GETNAME.
    GetName,
    /// CLIENT ID.
    Id,
    /// CLIENT SETINFO LIB-NAME|LIB-VER value.
    SetInfo {
        /// True for LIB-NAME, false for LIB-VER.
        library_name: bool,
        /// The value.
        value: Bytes,
    },
    /// CLIENT INFO.
    Info,
    /// CLIENT HELP.
    Help,
}

/// Reads the arguments after the name of the connection command `name`.
pub fn parse(name: &str, args: &[Bytes]) -> Result<ConnectionCommand, ClientError> {
    Ok(match name {
        "ping" => match args {
            [] => ConnectionCommand::Ping(None),
            [message] => ConnectionCommand::Ping(Some(message.clone())),
            _ => return Err(ClientError::WrongArity("ping".into())),
        },
        "echo" => ConnectionCommand::Echo(args[0].clone()),
        "hello" => parse_hello(args)?,
        "auth" => match args {
            [password] => ConnectionCommand::Auth {
                user: None,
                password: password.clone(),
            },
            [user, password] => ConnectionCommand::Auth {
                user: Some(user.clone()),
                password: password.clone(),
            },
            _ => return Err(ClientError::Syntax),
        },
        "select" => {
            if integer_argument(&args[0])? != 0 {
                return Err(ClientError::DbIndexOutOfRange);
            }
            ConnectionCommand::Select
        }
        "quit" => ConnectionCommand::Quit,
        "client" => ConnectionCommand::Client(parse_client(args)?),
        _ => return Err(ClientError::Syntax),
    })
}

fn parse_hello(args: &[Bytes]) -> Result<ConnectionCommand, ClientError> {
    let Some((version, options)) = args.split_first() else {
        return Ok(ConnectionCommand::Hello {
            protocol: None,
            auth: None,
            name: None,
        });
    };
    let protocol = match parse_integer(version) {
        None => return Err(ClientError::BadProtocolVersion),
        Some(2) => Protocol::Resp2,
        Some(3) => Protocol::Resp3,
        Some(_) => return Err(ClientError::NoProto),
    };
    let (mut auth, mut name) = (None, None);
    let mut rest = options;
    while let Some((option, after)) = rest.split_first() {
        rest = match (lower(option).as_str(), after) {
            ("auth", [user, password, more @ ..]) => {
                auth = Some((user.clone(), password.clone()));
                more
            }
            ("setname", [client_name, more @ ..]) => {
                name = Some(client_name.clone());
                more
            }
            _ => {
                return Err(ClientError::HelloSyntax(
                    String::from_utf8_lossy(option).into_owned(),
                ));
            }
        };
    }
    Ok(ConnectionCommand::Hello {
        protocol: Some(protocol),
        auth,
        name,
    })
}

fn parse_client(args: &[Bytes]) -> Result<ClientCommand, ClientError> {
    let subcommand = lower(&args[0]);
    let (arity, command) = match subcommand.as_str() {
        "setname" => (2, args.get(1).cloned().map(ClientCommand::SetName)),
        "getname" => (1, Some(ClientCommand::GetName)),
        "id" => (1, Some(ClientCommand::Id)),
        "info" => (1, Some(ClientCommand::Info)),
        "help" => (1, Some(ClientCommand::Help)),
        "setinfo" => {
            let command = match (args.get(1), args.get(2)) {
                (Some(attribute), Some(value)) => {
                    let library_name = match lower(attribute).as_str() {
                        "lib-name" => true,
                        "lib-ver" => false,
                        _ => {
                            return Err(ClientError::UnrecognizedOption(
                                String::from_utf8_lossy(attribute).into_owned(),
                            ));
                        }
                    };
                    Some(ClientCommand::SetInfo {
                        library_name,
                        value: value.clone(),
                    })
                }
                _ => None,
            };
            (3, command)
        }
        _ => {
            return Err(ClientError::UnknownSubcommand {
                command: "CLIENT",
                subcommand: String::from_utf8_lossy(&args[0]).into_owned(),
            });
        }
    };
    match command {
        Some(command) if args.len() == arity => Ok(command),
        _ => Err(ClientError::WrongArity(format!("client|{subcommand}"))),
    }
}

/// Redis accepts names and library details made of printable ASCII without blanks.
fn printable_word(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| (b'!'..=b'~').contains(b))
}

impl ConnectionCommand {
    /// Carries the command out on `session`.
    pub fn apply(self, session: &mut Session) -> (Reply, After) {
        let reply = match self {
            ConnectionCommand::Ping(None) => Reply::Status(Cow::Borrowed("PONG")),
            ConnectionCommand::Ping(Some(message)) | ConnectionCommand::Echo(message) => {
                Reply::Bulk(message)
            }
            ConnectionCommand::Hello {
                protocol,
                auth,
                name,
            } => hello(session, protocol, auth, name),
            ConnectionCommand::Auth { user, password } => {
                match session.authenticate(user.as_deref(), &password) {
                    Ok(()) => Reply::OK,
                    Err(error) => Reply::Error(error),
                }
            }
            ConnectionCommand::Select => Reply::OK,
            ConnectionCommand::Quit => return (Reply::OK, After::Close),
            ConnectionCommand::Client(command) => client(session, command),
        };
        (reply, After::Continue)
    }
}

fn hello(
    session: &mut Session,
    protocol: Option<Protocol>,
    auth: Option<(Bytes, Bytes)>,
    name: Option<Bytes>,
) -> Reply {
    if let Some((user, password)) = auth {
        if let Err(error) = session.authenticate(Some(&user), &password) {
            return Reply::Error(error);
        }
    }
    if !session.authenticated {
        return Reply::Error(ClientError::NoAuthHello);
    }
    if let Some(name) = name {
        if !printable_word(&name) {
            return Reply::Error(ClientError::BadClientName);
        }
        session.name = Some(name).filter(|n| !n.is_empty());
    }
    if let Some(protocol) = protocol {
        session.protocol = protocol;
    }
    let field = |name: &'static str, value: Reply| (Reply::text(name), value);
    Reply::Map(vec![
        field("server", Reply::text("haft")),
        field("version", Reply::text(REDIS_VERSION)),
        field("haft_version", Reply::text(env!("CARGO_PKG_VERSION"))),
        field("proto", Reply::Integer(session.protocol.number())),
        field("id", Reply::Integer(session.id as i64)),
        field("mode", Reply::text("standalone")),
        field("role", Reply::text("master")),
        field("modules", Reply::Array(vec![])),
    ])
}

fn client(session: &mut Session, command: ClientCommand) -> Reply {
    match command {
        ClientCommand::SetName(name) => {
            if !printable_word(&name) {
                return Reply::Error(ClientError::BadClientName);
            }
            session.name = Some(name).filter(|n| !n.is_empty());
            Reply::OK
        }
        ClientCommand::GetName => Reply::bulk_or_null(session.name.clone()),
        ClientCommand::Id => Reply::Integer(session.id as i64),
        ClientCommand::SetInfo {
            library_name,
            value,
        } => {
            let attribute = if library_name { "lib-name" } else { "lib-ver" };
            if !printable_word(&value) {
                return Reply::Error(ClientError::BadClientInfo(attribute.into()));
            }
            let slot = if library_name {
                &mut session.library_name
            } else {
                &mut session.library_version
            };
            *slot = Some(value).filter(|v| !v.is_empty());
            Reply::OK
        }
        ClientCommand::Info => Reply::Verbatim(session.describe()),
        ClientCommand::Help => Reply::Array(
            [
                "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "GETNAME",
                "    Return the name of the current connection.",
                "ID",
                "    Return the ID of the current connection.",
                "INFO",
                "    Return information about the current client connection.",
                "SETINFO <LIB-NAME|LIB-VER> <value>",
                "    Set the client library's name or version.",
                "SETNAME <name>",
                "    Assign the name <name> to the current connection.",
                "HELP",
                "    Print this help.",
            ]
            .into_iter()
            .map(|line| Reply::Status(Cow::Borrowed(line)))
            .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(words: &[&str]) -> Result<ConnectionCommand, ClientError> {
        let args: Vec<Bytes> = words[1..]
            .iter()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect();
        parse(words[0], &args)
    }

    #[test]
    fn select_accepts_only_database_zero() {
        assert_eq!(parse_words(&["select", "0"]), Ok(ConnectionCommand::Select));
        assert_eq!(
            parse_words(&["select", "1"]),
            Err(ClientError::DbIndexOutOfRange)
        );
        assert_eq!(parse_words(&["select", "x"]), Err(ClientError::NotInteger));
    }

    #[test]
    fn hello_reads_its_version_and_options() {
        assert_eq!(parse_words(&["hello", "4"]), Err(ClientError::NoProto));
        assert_eq!(
            parse_words(&["hello", "x"]),
            Err(ClientError::BadProtocolVersion)
        );
        assert_eq!(
            parse_words(&["hello", "3", "auth", "default"]),
            Err(ClientError::HelloSyntax("auth".into()))
        );
        assert_eq!(
            parse_words(&["hello", "3", "AUTH", "default", "pw", "SETNAME", "me"]),
            Ok(ConnectionCommand::Hello {
                protocol: Some(Protocol::Resp3),
                auth: Some((Bytes::from_static(b"default"), Bytes::from_static(b"pw"))),
                name: Some(Bytes::from_static(b"me")),
            })
        );
    }

    #[test]
    fn client_subcommands_have_their_own_arity_and_errors() {
        assert_eq!(
            parse_words(&["client", "setname"]),
            Err(ClientError::WrongArity("client|setname".into()))
        );
        assert_eq!(
            parse_words(&["client", "getname", "x"]),
            Err(ClientError::WrongArity("client|getname".into()))
        );
        assert_eq!(
            parse_words(&["client", "kill"]).map_err(|e| e.to_string()),
            Err("ERR unknown subcommand 'kill'. Try CLIENT HELP.".into())
        );
        assert_eq!(
            parse_words(&["client", "setinfo", "color", "red"]),
            Err(ClientError::UnrecognizedOption("color".into()))
        );
    }
}
