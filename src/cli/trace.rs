//! Counterexamples people can read: each step's action and only what it
//! changed, as text, JSON (states as structures) or a Mermaid sequence diagram
//! of the messages.

use clap::ValueEnum;
use haft::checker::value::{self, Change, Value};
use haft::models::{CheckReport, PropertyReport, Step};
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

fn steps_json(steps: &[Step]) -> serde_json::Value {
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

fn mermaid(report: &CheckReport, property: &PropertyReport, steps: &[Step]) -> String {
    let mut actors: Vec<String> = Vec::new();
    let mut lines = Vec::new();
    let note_actor = |name: &str, actors: &mut Vec<String>| {
        if !actors.iter().any(|a| a == name) {
            actors.push(name.to_string());
        }
        participant(name)
    };
    for step in steps.iter().skip(1) {
        let parts: Vec<&str> = step.action.split(" → ").collect();
        match parts.as_slice() {
            // stateright's actor deliveries: `src → msg → dst`.
            [src, msg, dst] => {
                let (s, d) = (note_actor(src, &mut actors), note_actor(dst, &mut actors));
                lines.push(format!("    {s}->>{d}: {}", escape(msg)));
            }
            _ => {
                let who = step
                    .action
                    .find("Id(")
                    .and_then(|at| {
                        step.action[at..]
                            .find(')')
                            .map(|end| &step.action[at..=at + end])
                    })
                    .unwrap_or("system");
                let p = note_actor(who, &mut actors);
                lines.push(format!("    Note over {p}: {}", escape(&step.action)));
            }
        }
    }
    let mut out = format!(
        "%% {} ({}): `{}` is violated\nsequenceDiagram\n",
        report.model, report.params, property.name
    );
    actors.sort();
    for actor in &actors {
        out.push_str(&format!(
            "    participant {} as {}\n",
            participant(actor),
            actor
        ));
    }
    for line in lines {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Mermaid text may not contain `;` or `#` unescaped.
fn escape(text: &str) -> String {
    text.replace('#', "#35;").replace(';', "#59;")
}
