//! `haft explore`: haft's Explorer, one web page and a small JSON API on a
//! local address.
//!
//! The page (src/cli/explorer/, embedded in the binary: no network needed)
//! shows a model by its name and parameters, every property `haft check`
//! checks on it with the checker's verdict — each counterexample a link to its
//! path — and lets a person walk the model: the current state, the actions
//! enabled in it, the path so far, and a sequence diagram of its messages.
//! Any model of the registry can be loaded from the page; each is checked
//! once, in the background, one model at a time.
//!
//! The API (GET only; errors are `{"error": …}` with 400 or 404):
//!
//! - `/api/models` — the registry: each model's parameters, and the model the
//!   command was started with;
//! - `/api/model/NAME?k=v&…` — the model at those parameters (the others take
//!   their defaults): its properties and the state of its check;
//! - `/api/model/NAME/path/0/3/1?k=v&…` — where that path of choices leads
//!   (see [`haft::models::browse`]).
//!
//! The page's own address mirrors the API: `#/NAME/path/0/3/1?k=v&…`, so a
//! path can be bookmarked and a counterexample is a link.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};
use std::time::Duration;

use clap::Args;
use haft::checker::memory;
use haft::models::{
    self, Browse, CheckOptions, CheckReport, ModelEntry, ParamKind, Params, Progress,
};
use serde_json::{Value, json};

use crate::UsageError;
use crate::trace::{self, Sequence};

/// `haft explore`.
#[derive(Args)]
pub struct ExploreArgs {
    /// The model to open first (any other can be loaded from the page).
    model: String,
    /// A parameter, as key=value (repeatable); see `haft check --list`.
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// Where to serve the Explorer (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
}

/// Threads answering requests; a request replays one path at most.
const REQUEST_THREADS: usize = 4;

/// The longest path the API replays.
const MAX_PATH: usize = 10_000;

pub fn explore(args: ExploreArgs) -> Result<ExitCode, UsageError> {
    let entry = models::find(&args.model)?;
    let params = entry.params(&args.params)?;
    let explorer = Explorer::start(entry, params.clone());
    // Opened (and its check started) before the page asks; a combination of
    // parameters the model refuses is found here.
    explorer
        .session(entry.name, &query_of(&params))
        .map_err(|error| UsageError(error.message))?;
    let server = tiny_http::Server::http(args.addr).map_err(|error| {
        UsageError(format!(
            "cannot serve the Explorer on {}: {error}; choose another --addr",
            args.addr
        ))
    })?;
    let addr = server.server_addr().to_ip().unwrap_or(args.addr);
    eprintln!(
        "Explorer for {} ({params}) on http://{addr}/ — Ctrl-C to stop",
        entry.name
    );
    std::thread::scope(|scope| {
        for _ in 0..REQUEST_THREADS {
            scope.spawn(|| {
                while let Ok(request) = server.recv() {
                    let reply = explorer.respond(request.method().as_str(), request.url());
                    let content_type =
                        tiny_http::Header::from_bytes("Content-Type", reply.content_type)
                            .expect("a valid header");
                    let no_store = tiny_http::Header::from_bytes("Cache-Control", "no-store")
                        .expect("a valid header");
                    let response = tiny_http::Response::from_string(reply.body)
                        .with_status_code(reply.status)
                        .with_header(content_type)
                        .with_header(no_store);
                    // A browser that went away is no error of ours.
                    let _ = request.respond(response);
                }
            });
        }
    });
    Ok(ExitCode::SUCCESS)
}

/// An HTTP answer.
#[derive(Debug)]
struct Reply {
    status: u16,
    content_type: &'static str,
    body: String,
}

impl Reply {
    fn json(value: &Value) -> Reply {
        Reply {
            status: 200,
            content_type: "application/json",
            body: value.to_string(),
        }
    }

    fn file(content_type: &'static str, body: &str) -> Reply {
        Reply {
            status: 200,
            content_type,
            body: body.to_string(),
        }
    }
}

/// A request the API refuses — 400 (bad input), 404 (nothing there) or 405
/// (not a GET) — and why.
#[derive(Debug)]
struct ApiError {
    status: u16,
    message: String,
}

impl ApiError {
    fn new(status: u16, message: impl std::fmt::Display) -> ApiError {
        ApiError {
            status,
            message: message.to_string(),
        }
    }
}

impl From<ApiError> for Reply {
    fn from(error: ApiError) -> Reply {
        Reply {
            status: error.status,
            content_type: "application/json",
            body: json!({ "error": error.message }).to_string(),
        }
    }
}

/// The Explorer's state: the models opened so far, each with its check.
struct Explorer {
    /// The model the command was started with.
    start: (&'static ModelEntry, Params),
    /// By model name and parameters.
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    /// To the thread that checks the models, one at a time.
    to_checker: mpsc::Sender<Arc<Session>>,
}

/// One model at one set of parameters.
struct Session {
    entry: &'static ModelEntry,
    params: Params,
    browser: Box<dyn Browse>,
    check: Mutex<Check>,
}

/// Where a session's check is.
enum Check {
    /// Waiting for the checks of other models to finish.
    Queued,
    /// Running: how far it has come.
    Running { unique_states: usize, seconds: f64 },
    /// Finished, with the path of each counterexample.
    Done(Box<Checked>),
    /// The checker refused the model.
    Failed(String),
}

/// A finished check.
struct Checked {
    report: CheckReport,
    /// For each property of the report, where its counterexample leads.
    paths: Vec<Paths>,
}

/// A counterexample as paths of the Explorer (`None` where there is none, or
/// it cannot be replayed).
struct Paths {
    /// The counterexample's path.
    counterexample: Option<Vec<usize>>,
    /// For a liveness violation, the path on through the trap it ends in.
    through_trap: Option<Vec<usize>>,
}

/// A lock that a panicking request thread cannot make unusable: the data it
/// guards is replaced whole, never left half-written.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Explorer {
    /// The Explorer, with its checker thread started.
    fn start(entry: &'static ModelEntry, params: Params) -> Explorer {
        let (to_checker, queue) = mpsc::channel::<Arc<Session>>();
        std::thread::spawn(move || {
            for session in queue {
                run_check(&session);
            }
        });
        Explorer {
            start: (entry, params),
            sessions: Mutex::new(HashMap::new()),
            to_checker,
        }
    }

    /// The session of model `name` at the parameters in `query`, opened (and
    /// its check queued) if it is new.
    fn session(&self, name: &str, query: &str) -> Result<Arc<Session>, ApiError> {
        let entry = models::find(name).map_err(|error| ApiError::new(404, error))?;
        let pairs = parse_query(query).map_err(|error| ApiError::new(400, error))?;
        let pairs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let params = Params::from_pairs(entry.name, entry.params, &pairs)
            .map_err(|error| ApiError::new(400, error))?;
        let key = format!("{} {params}", entry.name);
        let mut sessions = lock(&self.sessions);
        if let Some(session) = sessions.get(&key) {
            return Ok(session.clone());
        }
        let browser = entry
            .browse(&params)
            .map_err(|error| ApiError::new(400, error))?;
        let session = Arc::new(Session {
            entry,
            params,
            browser,
            check: Mutex::new(Check::Queued),
        });
        sessions.insert(key, session.clone());
        // The checker thread lives as long as the process.
        let _ = self.to_checker.send(session.clone());
        Ok(session)
    }

    /// The answer to a request.
    fn respond(&self, method: &str, url: &str) -> Reply {
        if method != "GET" && method != "HEAD" {
            let message = format!("the Explorer answers GET only, not {method}");
            return ApiError::new(405, message).into();
        }
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        match path {
            "/" | "/index.html" => Reply::file("text/html; charset=utf-8", PAGE),
            "/explorer.js" => Reply::file("text/javascript; charset=utf-8", SCRIPT),
            "/explorer.css" => Reply::file("text/css; charset=utf-8", STYLE),
            "/api/models" => Reply::json(&self.models_json()),
            _ => match path.strip_prefix("/api/model/") {
                Some(rest) => self.model_api(rest, query).unwrap_or_else(Reply::from),
                None => {
                    ApiError::new(404, format!("nothing at {path}; the Explorer is at /")).into()
                }
            },
        }
    }

    /// `/api/model/NAME…`.
    fn model_api(&self, rest: &str, query: &str) -> Result<Reply, ApiError> {
        let mut segments = rest.split('/');
        let name = decode(segments.next().unwrap_or("")).map_err(|e| ApiError::new(400, e))?;
        let session = self.session(&name, query)?;
        match segments.next() {
            None | Some("") => Ok(Reply::json(&session.json())),
            Some("path") => {
                let path = segments
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        s.parse::<usize>().map_err(|_| {
                            ApiError::new(400, format!("`{s}` in the path is not a choice number"))
                        })
                    })
                    .collect::<Result<Vec<usize>, ApiError>>()?;
                if path.len() > MAX_PATH {
                    return Err(ApiError::new(
                        400,
                        format!("the path has {} steps; at most {MAX_PATH}", path.len()),
                    ));
                }
                let walk = session
                    .browser
                    .walk(&path)
                    .map_err(|error| ApiError::new(404, error))?;
                let sequence = Sequence::of(&walk.steps);
                let mermaid = sequence.mermaid(&format!(
                    "{} ({}): a path of {} steps",
                    session.entry.name,
                    session.params,
                    walk.steps.len().saturating_sub(1)
                ));
                let here: Vec<Value> = walk
                    .here
                    .iter()
                    .map(|judged| {
                        json!({
                            "name": judged.name,
                            "kind": judged.kind.name(),
                            "holds": judged.holds,
                            "note": judged.note,
                        })
                    })
                    .collect();
                Ok(Reply::json(&json!({
                    "path": path,
                    "steps": trace::steps_json(&walk.steps),
                    "choices": walk.choices,
                    "here": here,
                    "sequence": sequence,
                    "mermaid": mermaid,
                })))
            }
            Some(other) => Err(ApiError::new(
                404,
                format!("nothing at `{other}` under a model; did you mean `path`?"),
            )),
        }
    }

    /// `/api/models`.
    fn models_json(&self) -> Value {
        let models: Vec<Value> = models::registry()
            .iter()
            .map(|entry| {
                let params: Vec<Value> = entry
                    .params
                    .iter()
                    .map(|spec| {
                        let mut param = json!({
                            "name": spec.name,
                            "default": spec.default,
                            "help": spec.help,
                        });
                        match spec.kind {
                            ParamKind::Int { min, max } => {
                                param["kind"] = json!("int");
                                param["min"] = json!(min);
                                param["max"] = json!(max);
                            }
                            ParamKind::Bool => {
                                param["kind"] = json!("choice");
                                param["choices"] = json!(["false", "true"]);
                            }
                            ParamKind::Choice(names) => {
                                param["kind"] = json!("choice");
                                param["choices"] = json!(names);
                            }
                        }
                        param
                    })
                    .collect();
                json!({ "name": entry.name, "summary": entry.summary, "params": params })
            })
            .collect();
        let (entry, params) = &self.start;
        json!({
            "start": { "model": entry.name, "query": query_of(params) },
            "models": models,
        })
    }
}

impl Session {
    /// The model, its parameters, and its properties with the check's verdicts
    /// so far.
    fn json(&self) -> Value {
        let params: Vec<Value> = self
            .params
            .values()
            .iter()
            .map(|(name, value)| json!([name, value.to_string()]))
            .collect();
        let mut object = json!({
            "model": self.entry.name,
            "summary": self.entry.summary,
            "params": params,
            "params_text": self.params.to_string(),
            "query": query_of(&self.params),
        });
        let checking = |state: &str| -> Vec<Value> {
            self.browser
                .checks()
                .into_iter()
                .map(|(name, kind)| json!({ "name": name, "kind": kind.name(), "status": state }))
                .collect()
        };
        let (check, properties) = match &*lock(&self.check) {
            Check::Queued => (json!({ "state": "queued" }), checking("checking")),
            Check::Running {
                unique_states,
                seconds,
            } => (
                json!({ "state": "running", "unique_states": unique_states, "seconds": seconds }),
                checking("checking"),
            ),
            Check::Failed(error) => (
                json!({ "state": "failed", "error": error }),
                checking("unknown"),
            ),
            Check::Done(checked) => {
                let report = &checked.report;
                let properties = report
                    .properties
                    .iter()
                    .zip(&checked.paths)
                    .map(|(property, paths)| {
                        json!({
                            "name": property.name,
                            "kind": property.expectation,
                            "status": property.status,
                            "note": property.note,
                            "steps": property
                                .counterexample
                                .as_ref()
                                .map(|steps| steps.len().saturating_sub(1)),
                            "path": paths.counterexample,
                            "trap_path": paths.through_trap,
                        })
                    })
                    .collect();
                (
                    json!({
                        "state": "done",
                        "complete": report.complete,
                        "stopped": report.stopped,
                        "unique_states": report.unique_states,
                        "total_states": report.total_states,
                        "max_depth": report.max_depth,
                        "seconds": report.seconds,
                    }),
                    properties,
                )
            }
        };
        object["check"] = check;
        object["properties"] = Value::Array(properties);
        object
    }
}

/// Checks `session`'s model as `haft check` does, and finds the path of each
/// counterexample.
fn run_check(session: &Arc<Session>) {
    *lock(&session.check) = Check::Running {
        unique_states: 0,
        seconds: 0.0,
    };
    let progressing = session.clone();
    let options = CheckOptions {
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        max_memory: memory::default_limit(),
        progress: Some(Box::new(move |p: &Progress| {
            *lock(&progressing.check) = Check::Running {
                unique_states: p.unique_states,
                seconds: p.elapsed.as_secs_f64(),
            };
        })),
        progress_every: Duration::from_millis(250),
        ..CheckOptions::default()
    };
    let outcome = match session.entry.check(&session.params, &options) {
        Ok(report) => {
            let paths = report
                .properties
                .iter()
                .map(|property| {
                    let Some(steps) = &property.counterexample else {
                        return Paths {
                            counterexample: None,
                            through_trap: None,
                        };
                    };
                    Paths {
                        counterexample: session.browser.locate(steps),
                        through_trap: property.trap.as_ref().and_then(|trap| {
                            let through: Vec<_> = steps.iter().chain(trap).cloned().collect();
                            session.browser.locate(&through)
                        }),
                    }
                })
                .collect();
            Check::Done(Box::new(Checked { report, paths }))
        }
        Err(error) => Check::Failed(error.to_string()),
    };
    *lock(&session.check) = outcome;
}

/// `k=v&k=v`, every parameter, in declaration order: the canonical query of a
/// model's page.
fn query_of(params: &Params) -> String {
    params
        .values()
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The `key=value` pairs of a query string, decoded.
fn parse_query(query: &str) -> Result<Vec<(String, String)>, String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{pair}` in the query is not of the form key=value"))?;
            Ok((decode(key)?, decode(value)?))
        })
        .collect()
}

/// Undoes a URL's percent-encoding (and `+` for a space).
fn decode(text: &str) -> Result<String, String> {
    let bad = || format!("`{text}` is not validly percent-encoded");
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        rest = tail;
        match byte {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hex = rest.get(..2).ok_or_else(bad)?;
                let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
                bytes.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
                rest = &rest[2..];
            }
            _ => bytes.push(byte),
        }
    }
    String::from_utf8(bytes).map_err(|_| bad())
}

const PAGE: &str = include_str!("explorer/index.html");
const SCRIPT: &str = include_str!("explorer/explorer.js");
const STYLE: &str = include_str!("explorer/explorer.css");

#[cfg(test)]
mod tests {
    use super::*;

    fn explorer() -> Explorer {
        let entry = models::find("two-phase-spec").unwrap();
        Explorer::start(entry, entry.default_params())
    }

    fn get(explorer: &Explorer, url: &str) -> (u16, Value) {
        let reply = explorer.respond("GET", url);
        let body = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
        (reply.status, body)
    }

    /// The session's JSON once its check is done.
    fn checked(explorer: &Explorer, url: &str) -> Value {
        for _ in 0..600 {
            let (status, body) = get(explorer, url);
            assert_eq!(status, 200, "{body}");
            if body["check"]["state"] == "done" {
                return body;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the check of {url} did not finish");
    }

    #[test]
    fn bad_requests_are_clear_errors() {
        let explorer = explorer();
        let cases = [
            (
                "/api/model/no-such-model",
                404,
                "there is no model `no-such-model`",
            ),
            (
                "/api/model/two-phase?participants=99",
                400,
                "`participants=99` is not allowed",
            ),
            (
                "/api/model/two-phase?colour=blue",
                400,
                "has no parameter `colour`",
            ),
            (
                "/api/model/two-phase?participants",
                400,
                "not of the form key=value",
            ),
            (
                "/api/model/two-phase/path/0/x",
                400,
                "`x` in the path is not a choice number",
            ),
            (
                "/api/model/two-phase/path/0/999",
                404,
                "step 1 of the path chooses 999",
            ),
            (
                "/api/model/two-phase/path/1",
                404,
                "step 0 of the path chooses 1",
            ),
            ("/api/model/two-phase/paths", 404, "did you mean `path`"),
            (
                "/api/model/two-phase?variant=%zz",
                400,
                "not validly percent-encoded",
            ),
            ("/favicon.ico", 404, "nothing at /favicon.ico"),
        ];
        for (url, status, message) in cases {
            let (got, body) = get(&explorer, url);
            assert_eq!(got, status, "{url}: {body}");
            let error = body["error"].as_str().unwrap_or_default();
            assert!(error.contains(message), "{url}: {error}");
        }
        assert_eq!(explorer.respond("POST", "/").status, 405);
    }

    #[test]
    fn the_page_and_its_files_are_served() {
        let explorer = explorer();
        for (url, kind) in [
            ("/", "text/html"),
            ("/explorer.js", "text/javascript"),
            ("/explorer.css", "text/css"),
        ] {
            let reply = explorer.respond("GET", url);
            assert_eq!(reply.status, 200);
            assert!(reply.content_type.starts_with(kind));
            assert!(!reply.body.is_empty());
        }
        let (_, models) = get(&explorer, "/api/models");
        assert_eq!(models["start"]["model"], "two-phase-spec");
        assert_eq!(
            models["models"].as_array().unwrap().len(),
            models::registry().len()
        );
    }

    #[test]
    fn a_counterexample_links_to_its_path() {
        let explorer = explorer();
        let url = "/api/model/two-phase?participants=2&variant=forget-too-early";
        let model = checked(&explorer, url);
        assert_eq!(
            model["query"],
            "participants=2&txns=1&lossy=false&crashes=0&disk=atomic&variant=forget-too-early"
        );
        let properties = model["properties"].as_array().unwrap();
        let agreement = properties
            .iter()
            .find(|p| p["name"] == "AC1 agreement")
            .unwrap();
        assert_eq!(agreement["status"], "violated");
        let path: Vec<String> = agreement["path"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.to_string())
            .collect();
        assert_eq!(path.len() as u64, agreement["steps"].as_u64().unwrap() + 1);
        let walk_url = format!(
            "/api/model/two-phase/path/{}?{}",
            path.join("/"),
            model["query"].as_str().unwrap()
        );
        let (status, walk) = get(&explorer, &walk_url);
        assert_eq!(status, 200, "{walk}");
        assert_eq!(walk["steps"].as_array().unwrap().len(), path.len());
        let here = walk["here"].as_array().unwrap();
        let judged = here.iter().find(|j| j["name"] == "AC1 agreement").unwrap();
        assert_eq!(judged["holds"], false);
        let events = walk["sequence"]["events"].as_array().unwrap();
        assert_eq!(events.len(), path.len() - 1);
        assert!(events.iter().any(|e| e["kind"] == "message"));
        assert!(
            walk["mermaid"]
                .as_str()
                .unwrap()
                .contains("sequenceDiagram")
        );
    }
}
