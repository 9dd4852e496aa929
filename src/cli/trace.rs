//! Counterexamples people can read: each step's action and only what it
//! changed, as text, JSON (states as structures) or a Mermaid sequence diagram
//! of the messages.

use clap::ValueEnum;
use haft::checker::value::{self, Change, Value};
use haft::models::{CheckReport, PropertyReport, Step};
use serde::Serialize;
use serde_json::json;

/// How to print counterexamples.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TraceFormat {
    /// Numbered steps, each with what changed, indented.
    Text,
    /// One JSON object per counterexample: structured states and changes.
    Json,
    /// A Mermaid sequence diagram of the messages (actor models), with the
    /// other steps as notes.
    Mermaid,
}

/// The steps of a trace with their states read back as structures.
fn structured(steps: &[Step]) -> Vec<(String, Value, Vec<Change>)> {
    let mut previous: Option<Value> = None;
    steps
        .iter()
        .map(|step| {
            let state = value::parse(&step.state);
            let changes = previous
                .as_ref()
                .map(|p| value::diff(p, &state))
                .unwrap_or_default();
            previous = Some(state.clone());
            (step.action.clone(), state, changes)
        })
        .collect()
}

/// Steps as JSON: each action with its state as a structure and what it
/// changed.
pub fn steps_json(steps: &[Step]) -> serde_json::Value {
    serde_json::Value::Array(
        structured(steps)
            .into_iter()
            .map(|(action, state, changes)| {
                json!({ "action": action, "state": state, "changes": changes })
            })
            .collect(),
    )
}

/// A report as one JSON line, its counterexamples with structured states.
pub fn report_json(report: &CheckReport) -> String {
    let mut object = serde_json::to_value(report).unwrap_or_else(|_| json!({}));
    if let Some(properties) = object.get_mut("properties").and_then(|p| p.as_array_mut()) {
        for (json, property) in properties.iter_mut().zip(&report.properties) {
            if let Some(steps) = &property.counterexample {
                json["counterexample"] = steps_json(steps);
            }
            if let Some(steps) = &property.trap {
                json["trap"] = steps_json(steps);
            }
        }
    }
    object.to_string()
}

/// The counterexamples of `report` in `format`. With `--json` the text form is
/// left out (the JSON report carries the traces).
pub fn render(report: &CheckReport, format: TraceFormat, json_report: bool) -> Vec<String> {
    report
        .properties
        .iter()
        .filter(|p| p.refuted())
        .filter_map(|p| match format {
            TraceFormat::Text if json_report => None,
            TraceFormat::Text => Some(text(report, p)),
            TraceFormat::Json => Some(
                json!({
                    "model": report.model,
                    "params": report.params.to_string(),
                    "property": p.name,
                    "kind": p.expectation,
                    "note": p.note,
                    "steps": p.counterexample.as_deref().map(steps_json),
                    "trap": p.trap.as_deref().map(steps_json),
                })
                .to_string()
                    + "\n",
            ),
            TraceFormat::Mermaid => p
                .counterexample
                .as_deref()
                .map(|steps| mermaid(report, p, steps)),
        })
        .collect()
}

fn change_line(change: &Change) -> String {
    match (&change.before, &change.after) {
        (Some(before), Some(after)) => format!("{}: {before} → {after}", change.path),
        (None, Some(after)) => format!("{}: + {after}", change.path),
        (Some(before), None) => format!("{}: − {before}", change.path),
        (None, None) => change.path.clone(),
    }
}

/// The fields of a state, one a line.
fn state_lines(state: &Value) -> Vec<String> {
    match state {
        Value::Record(_, fields) => fields.iter().map(|(k, v)| format!("{k}: {v}")).collect(),
        Value::Seq(items) => items.iter().map(ToString::to_string).collect(),
        other => vec![other.to_string()],
    }
}

fn text(report: &CheckReport, property: &PropertyReport) -> String {
    let mut out = String::new();
    let what = match property.status {
        haft::checker::Status::NotWitnessed => "was never witnessed",
        _ => "is violated",
    };
    out.push_str(&format!(
        "\n✗ {} ({}): `{}` ({}) {what}.",
        report.model, report.params, property.name, property.expectation
    ));
    let Some(steps) = &property.counterexample else {
        out.push('\n');
        return out;
    };
    out.push_str(" Counterexample:\n");
    let structured = structured(steps);
    for (i, (action, state, changes)) in structured.iter().enumerate() {
        out.push_str(&format!("  {i:>3}. {action}\n"));
        let lines = if i == 0 {
            state_lines(state)
        } else {
            changes.iter().map(change_line).collect()
        };
        for line in lines {
            out.push_str(&format!("         {line}\n"));
        }
    }
    if let Some(trap) = &property.trap {
        let kind = if trap.is_empty() {
            "it has no successor: a deadlock"
        } else {
            "no goal state is reachable from here; the run can go on as"
        };
        out.push_str(&format!("       … {kind}:\n"));
        let mut previous = structured.last().map(|(_, s, _)| s.clone());
        for (i, step) in trap.iter().enumerate() {
            let state = value::parse(&step.state);
            out.push_str(&format!("  {:>3}. {}\n", structured.len() + i, step.action));
            if let Some(p) = &previous {
                for change in value::diff(p, &state) {
                    out.push_str(&format!("         {}\n", change_line(&change)));
                }
            }
            previous = Some(state);
        }
        if !trap.is_empty() {
            out.push_str("       … and round again (a state repeats).\n");
        }
    }
    out
}

/// A Mermaid participant id for an actor's name.
fn participant(name: &str) -> String {
    let id: String = name.chars().filter(char::is_ascii_alphanumeric).collect();
    format!("p{id}")
}

/// The messages of a path, for a sequence diagram: `haft check
/// --trace-format mermaid` and the Explorer's diagram.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Sequence {
    /// The actors, sorted by name: the diagram's columns.
    pub actors: Vec<String>,
    /// One event per step after the initial state, in order.
    pub events: Vec<Event>,
}

/// What one step of a path shows in a sequence diagram.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Event {
    /// A message delivered: stateright's actor deliveries read `src → msg → dst`.
    Message {
        /// The step's number in the path (the initial state is step 0).
        step: usize,
        /// The sender.
        from: String,
        /// The receiver.
        to: String,
        /// The message.
        label: String,
    },
    /// Any other step, as a note over the actor it names (`Id(n)`), else over
    /// `system`.
    Note {
        /// The step's number in the path.
        step: usize,
        /// The actor.
        over: String,
        /// The action.
        text: String,
    },
}

impl Sequence {
    /// The sequence of `steps`, a path from its initial state.
    pub fn of(steps: &[Step]) -> Sequence {
        let mut actors: Vec<String> = Vec::new();
        let mut actor = |name: &str| {
            if !actors.iter().any(|a| a == name) {
                actors.push(name.to_string());
            }
            name.to_string()
        };
        let events = steps
            .iter()
            .enumerate()
            .skip(1)
            .map(|(step, s)| match delivery(&s.action) {
                Some((from, to, label)) => Event::Message {
                    step,
                    from: actor(from),
                    to: actor(to),
                    label: label.to_string(),
                },
                None => Event::Note {
                    step,
                    over: actor(actor_named(&s.action).unwrap_or("system")),
                    text: s.action.clone(),
                },
            })
            .collect();
        actors.sort();
        Sequence { actors, events }
    }

    /// The sequence as a Mermaid `sequenceDiagram`, after a `%%` comment line.
    pub fn mermaid(&self, comment: &str) -> String {
        let mut out = format!("%% {comment}\nsequenceDiagram\n");
        for actor in &self.actors {
            out.push_str(&format!(
                "    participant {} as {actor}\n",
                participant(actor)
            ));
        }
        for event in &self.events {
            let line = match event {
                Event::Message {
                    from, to, label, ..
                } => format!(
                    "{}->>{}: {}",
                    participant(from),
                    participant(to),
                    escape(label)
                ),
                Event::Note { over, text, .. } => {
                    format!("Note over {}: {}", participant(over), escape(text))
                }
            };
            out.push_str(&format!("    {line}\n"));
        }
        out
    }
}

/// The message an action delivers, as (sender, receiver, message), in the
/// forms haft's models write: stateright's actors `src → msg → dst`, the node
/// model's `src → dst: msg`, the heartbeat model's `Deliver src→dst msg`.
/// Actor names have no spaces; that tells a delivery from an action the checker
/// appended a note to (which may contain arrows).
fn delivery(action: &str) -> Option<(&str, &str, &str)> {
    let (from, to, label) = match action.strip_prefix("Deliver ") {
        Some(rest) => {
            let (route, label) = rest.split_once(' ')?;
            let (from, to) = route.split_once('→')?;
            (from, to, label)
        }
        None => {
            let (from, rest) = action.split_once(" → ")?;
            match rest.rsplit_once(" → ") {
                Some((label, to)) => (from, to, label),
                None => {
                    let (to, label) = rest.split_once(": ")?;
                    (from, to, label)
                }
            }
        }
    };
    let name = |s: &str| !s.is_empty() && !s.contains(char::is_whitespace);
    (name(from) && name(to)).then_some((from, to, label))
}

/// The first actor an action names, `Id(n)`.
fn actor_named(action: &str) -> Option<&str> {
    let at = action.find("Id(")?;
    let end = action[at..].find(')')?;
    Some(&action[at..=at + end])
}

fn mermaid(report: &CheckReport, property: &PropertyReport, steps: &[Step]) -> String {
    Sequence::of(steps).mermaid(&format!(
        "{} ({}): `{}` is violated",
        report.model, report.params, property.name
    ))
}

/// Mermaid text may not contain `;` or `#` unescaped.
fn escape(text: &str) -> String {
    text.replace('#', "#35;").replace(';', "#59;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_are_read_in_every_models_form() {
        let cases = [
            (
                "Id(0) → Prepare(t0, {}) → Id(1)",
                Some(("Id(0)", "Id(1)", "Prepare(t0, {})")),
            ),
            (
                "n0 → n1: Vote(t0, Yes)",
                Some(("n0", "n1", "Vote(t0, Yes)")),
            ),
            (
                "Deliver n0→n1 Alive(inc 1.0) (sent t=0)",
                Some(("n0", "n1", "Alive(inc 1.0) (sent t=0)")),
            ),
            ("Id(1) select random Accept(t0.1.0)", None),
            ("node 1 fires Resend", None),
            // A refused transition: the checker's note holds arrows too.
            (
                "Id(0) → Outcome(t0) → Id(1) — a=[P] → a=[A] is no step of the spec",
                None,
            ),
        ];
        for (action, expected) in cases {
            assert_eq!(delivery(action), expected, "{action}");
        }
    }

    #[test]
    fn a_sequence_has_sorted_actors_and_one_event_per_step() {
        let step = |action: &str| Step {
            action: action.to_string(),
            state: String::new(),
        };
        let steps = [
            step("initial state"),
            step("Id(1) → Vote(Yes) → Id(0)"),
            step("Id(1) crashes"),
            step("Tick"),
        ];
        let sequence = Sequence::of(&steps);
        assert_eq!(sequence.actors, ["Id(0)", "Id(1)", "system"]);
        assert_eq!(sequence.events.len(), 3);
        let mermaid = sequence.mermaid("a test");
        assert!(
            mermaid.starts_with("%% a test\nsequenceDiagram\n"),
            "{mermaid}"
        );
        assert!(
            mermaid.contains("    pId1->>pId0: Vote(Yes)\n"),
            "{mermaid}"
        );
        assert!(
            mermaid.contains("    Note over pId1: Id(1) crashes\n"),
            "{mermaid}"
        );
        assert!(
            mermaid.contains("    Note over psystem: Tick\n"),
            "{mermaid}"
        );
    }
}
