//! States as structures, read back from their `Debug` text, so that a trace can
//! show what each step changed and be exported as JSON — for any model, without
//! asking its state types for more than `Debug`.
//!
//! The reader accepts what derived `Debug` prints (`Name { field: value }`,
//! `Name(a, b)`, `[a, b]`, `{a, b}`, `{k: v}`, `"text"`) and is lenient with
//! hand-written forms: words separated by spaces become a sequence, and
//! `key=value` a named value. Whatever it cannot read stays text; nothing is
//! lost, since the text of a [`Value`] is the text it was read from, up to
//! spacing.

use std::fmt;

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};

/// A state, or a part of one, as read from its `Debug` text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A word, a number, a string literal: anything without structure.
    Atom(String),
    /// `Name { field: value, … }`.
    Record(String, Vec<(String, Value)>),
    /// `Name(a, …)`, `(a, …)`, or `key=value` (as `key=` with one item).
    Tuple(String, Vec<Value>),
    /// `[a, …]`.
    List(Vec<Value>),
    /// `{a, …}`.
    Set(Vec<Value>),
    /// `{k: v, …}`.
    Map(Vec<(Value, Value)>),
    /// Several values side by side, separated by spaces.
    Seq(Vec<Value>),
}

/// Reads `text`, a value's `Debug` form.
pub fn parse(text: &str) -> Value {
    let mut reader = Reader {
        chars: text.chars().collect(),
        at: 0,
    };
    let mut items = Vec::new();
    loop {
        reader.skip_spaces();
        if reader.at >= reader.chars.len() {
            break;
        }
        let before = reader.at;
        items.push(reader.value());
        if reader.at == before {
            // A stray closing bracket or separator: keep it as text.
            items.push(Value::Atom(reader.chars[reader.at].to_string()));
            reader.at += 1;
        }
    }
    match items.len() {
        0 => Value::Atom(String::new()),
        1 => items.pop().unwrap_or(Value::Atom(String::new())),
        _ => Value::Seq(items),
    }
}

struct Reader {
    chars: Vec<char>,
    at: usize,
}

const DELIMITERS: &[char] = &[',', ':', '(', ')', '[', ']', '{', '}', '"'];

impl Reader {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }

    fn value(&mut self) -> Value {
        self.skip_spaces();
        match self.peek() {
            Some('"') => Value::Atom(self.string()),
            Some('[') => Value::List(self.items(']')),
            Some('(') => Value::Tuple(String::new(), self.items(')')),
            Some('{') => self.braces(),
            _ => self.word_value(),
        }
    }

    fn string(&mut self) -> String {
        let start = self.at;
        self.at += 1;
        while let Some(c) = self.peek() {
            self.at += 1;
            match c {
                '\\' => self.at += 1,
                '"' => break,
                _ => {}
            }
        }
        self.chars[start..self.at.min(self.chars.len())]
            .iter()
            .collect()
    }

    fn word(&mut self) -> String {
        let start = self.at;
        while let Some(c) = self.peek() {
            if c.is_whitespace() || DELIMITERS.contains(&c) {
                break;
            }
            // `::` belongs to paths such as `Kind::Name`.
            self.at += 1;
        }
        // Keep `a::b` together.
        while self.peek() == Some(':') && self.chars.get(self.at + 1) == Some(&':') {
            self.at += 2;
            while let Some(c) = self.peek() {
                if c.is_whitespace() || DELIMITERS.contains(&c) {
                    break;
                }
                self.at += 1;
            }
        }
        self.chars[start..self.at].iter().collect()
    }

    fn word_value(&mut self) -> Value {
        let word = self.word();
        if word.is_empty() {
            return Value::Atom(word);
        }
        match self.peek() {
            Some('(') => return Value::Tuple(word, self.items(')')),
            Some('[' | '{') if word.ends_with('=') => {
                let inner = self.value();
                return Value::Tuple(word, vec![inner]);
            }
            _ => {}
        }
        // `Name { … }`: a record.
        let save = self.at;
        self.skip_spaces();
        if self.peek() == Some('{') && is_name(&word) {
            if let Value::Map(entries) = self.braces() {
                let fields = entries
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect();
                return Value::Record(word, fields);
            }
        }
        self.at = save;
        if let Some((key, value)) = word.split_once('=') {
            if !key.is_empty() && !value.is_empty() {
                return Value::Tuple(format!("{key}="), vec![Value::Atom(value.to_string())]);
            }
        }
        Value::Atom(word)
    }

    /// `open a, b, … close`; the reader is at `open`.
    fn items(&mut self, close: char) -> Vec<Value> {
        self.at += 1;
        let mut items = Vec::new();
        loop {
            self.skip_spaces();
            match self.peek() {
                None => break,
                Some(c) if c == close => {
                    self.at += 1;
                    break;
                }
                Some(',') => self.at += 1,
                _ => {
                    let before = self.at;
                    let item = self.sequence(close);
                    items.push(item);
                    if self.at == before {
                        self.at += 1;
                    }
                }
            }
        }
        items
    }

    /// Values up to the next `,` or `close`, as one value.
    fn sequence(&mut self, close: char) -> Value {
        let mut parts = Vec::new();
        loop {
            self.skip_spaces();
            match self.peek() {
                None | Some(',' | ':') => break,
                Some(c) if c == close => break,
                Some(')' | ']' | '}') => {
                    self.at += 1;
                }
                _ => {
                    let before = self.at;
                    parts.push(self.value());
                    if self.at == before {
                        self.at += 1;
                    }
                }
            }
        }
        if parts.len() == 1 {
            parts.pop().unwrap_or(Value::Atom(String::new()))
        } else {
            Value::Seq(parts)
        }
    }

    /// `{…}`: a map if its items have keys, else a set.
    fn braces(&mut self) -> Value {
        self.at += 1;
        let mut set = Vec::new();
        let mut map = Vec::new();
        loop {
            self.skip_spaces();
            match self.peek() {
                None => break,
                Some('}') => {
                    self.at += 1;
                    break;
                }
                Some(',') => self.at += 1,
                _ => {
                    let before = self.at;
                    let item = self.sequence('}');
                    self.skip_spaces();
                    if self.peek() == Some(':') {
                        self.at += 1;
                        let value = self.sequence('}');
                        map.push((item, value));
                    } else {
                        set.push(item);
                    }
                    if self.at == before {
                        self.at += 1;
                    }
                }
            }
        }
        if map.is_empty() {
            Value::Set(set)
        } else {
            map.extend(set.into_iter().map(|v| (v, Value::Atom(String::new()))));
            Value::Map(map)
        }
    }
}

fn is_name(word: &str) -> bool {
    word.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && word
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == ':' || c == '<' || c == '>')
}

fn join(f: &mut fmt::Formatter<'_>, items: &[Value]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Atom(text) => f.write_str(text),
            Value::Record(name, fields) => {
                write!(f, "{name} {{ ")?;
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str(" }")
            }
            Value::Tuple(name, items) if name.ends_with('=') => {
                f.write_str(name)?;
                join(f, items)
            }
            Value::Tuple(name, items) => {
                write!(f, "{name}(")?;
                join(f, items)?;
                f.write_str(")")
            }
            Value::List(items) => {
                f.write_str("[")?;
                join(f, items)?;
                f.write_str("]")
            }
            Value::Set(items) => {
                f.write_str("{")?;
                join(f, items)?;
                f.write_str("}")
            }
            Value::Map(entries) => {
                f.write_str("{")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
            Value::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{item}")?;
                }
                Ok(())
            }
        }
    }
}

/// JSON: a record is an object (with its type under `"type"` when it has
/// one), a list, set or sequence an array, a map an object keyed by the keys'
/// text, `Name(a)` an object `{"Name": a}`, and an atom a number, `true`,
/// `false`, `null` (for `None`) or a string.
impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Atom(text) => {
                if let Ok(n) = text.parse::<i64>() {
                    s.serialize_i64(n)
                } else if let Ok(x) = text.parse::<f64>() {
                    s.serialize_f64(x)
                } else {
                    match text.as_str() {
                        "true" => s.serialize_bool(true),
                        "false" => s.serialize_bool(false),
                        "None" => s.serialize_none(),
                        quoted if quoted.len() >= 2 && quoted.starts_with('"') => {
                            s.serialize_str(&quoted[1..quoted.len() - 1])
                        }
                        _ => s.serialize_str(text),
                    }
                }
            }
            Value::Record(name, fields) => {
                let mut map = s.serialize_map(Some(fields.len() + 1))?;
                map.serialize_entry("type", name)?;
                for (k, v) in fields {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Value::Tuple(name, items) if name.is_empty() => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Tuple(name, items) => {
                let key = name.trim_end_matches('=');
                let mut map = s.serialize_map(Some(1))?;
                match items.as_slice() {
                    [one] => map.serialize_entry(key, one)?,
                    _ => map.serialize_entry(key, items)?,
                }
                map.end()
            }
            Value::List(items) | Value::Set(items) | Value::Seq(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Map(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(&k.to_string(), v)?;
                }
                map.end()
            }
        }
    }
}

/// One difference between two states.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Where: `field.list[2].key`.
    pub path: String,
    /// What was there (`None`: an element added to a collection).
    pub before: Option<String>,
    /// What is there now (`None`: an element removed).
    pub after: Option<String>,
}

/// What changed from `before` to `after`, innermost first where the shapes
/// agree.
pub fn diff(before: &Value, after: &Value) -> Vec<Change> {
    let mut changes = Vec::new();
    compare(before, after, String::new(), &mut changes);
    changes
}

fn child(path: &str, part: &str) -> String {
    if path.is_empty() {
        part.to_string()
    } else if part.starts_with('[') {
        format!("{path}{part}")
    } else {
        format!("{path}.{part}")
    }
}

fn compare(a: &Value, b: &Value, path: String, out: &mut Vec<Change>) {
    if a == b {
        return;
    }
    let whole = |out: &mut Vec<Change>| {
        out.push(Change {
            path: if path.is_empty() {
                "state".into()
            } else {
                path.clone()
            },
            before: Some(a.to_string()),
            after: Some(b.to_string()),
        });
    };
    match (a, b) {
        (Value::Record(n1, f1), Value::Record(n2, f2)) if n1 == n2 => {
            for (k, v1) in f1 {
                match f2.iter().find(|(k2, _)| k2 == k) {
                    Some((_, v2)) => compare(v1, v2, child(&path, k), out),
                    None => out.push(Change {
                        path: child(&path, k),
                        before: Some(v1.to_string()),
                        after: None,
                    }),
                }
            }
        }
        (Value::Tuple(n1, i1), Value::Tuple(n2, i2)) if n1 == n2 && i1.len() == i2.len() => {
            let name = n1.trim_end_matches('=');
            let base = if n1.ends_with('=') {
                child(&path, name)
            } else {
                path.clone()
            };
            if i1.len() == 1 {
                compare(&i1[0], &i2[0], base, out);
            } else {
                for (i, (x, y)) in i1.iter().zip(i2).enumerate() {
                    compare(x, y, child(&base, &format!("{i}")), out);
                }
            }
        }
        (Value::List(i1), Value::List(i2)) if i1.len() == i2.len() => {
            for (i, (x, y)) in i1.iter().zip(i2).enumerate() {
                compare(x, y, child(&path, &format!("[{i}]")), out);
            }
        }
        (Value::Seq(i1), Value::Seq(i2)) if i1.len() == i2.len() => {
            for (i, (x, y)) in i1.iter().zip(i2).enumerate() {
                let part = match x {
                    Value::Tuple(name, _) if name.ends_with('=') => String::new(),
                    _ => format!("[{i}]"),
                };
                let p = if part.is_empty() {
                    path.clone()
                } else {
                    child(&path, &part)
                };
                compare(x, y, p, out);
            }
        }
        (Value::Map(e1), Value::Map(e2)) => {
            for (k, v1) in e1 {
                match e2.iter().find(|(k2, _)| k2 == k) {
                    Some((_, v2)) => compare(v1, v2, child(&path, &format!("[{k}]")), out),
                    None => out.push(Change {
                        path: child(&path, &format!("[{k}]")),
                        before: Some(v1.to_string()),
                        after: None,
                    }),
                }
            }
            for (k, v2) in e2 {
                if !e1.iter().any(|(k1, _)| k1 == k) {
                    out.push(Change {
                        path: child(&path, &format!("[{k}]")),
                        before: None,
                        after: Some(v2.to_string()),
                    });
                }
            }
        }
        (Value::Set(empty), Value::Map(_)) if empty.is_empty() => {
            compare(&Value::Map(Vec::new()), b, path, out);
        }
        (Value::Map(_), Value::Set(empty)) if empty.is_empty() => {
            compare(a, &Value::Map(Vec::new()), path, out);
        }
        (Value::Set(i1), Value::Set(i2)) | (Value::List(i1), Value::List(i2)) => {
            // Collections of another length: what left and what came.
            let mut left: Vec<&Value> = i2.iter().collect();
            for x in i1 {
                match left.iter().position(|y| *y == x) {
                    Some(p) => {
                        left.remove(p);
                    }
                    None => out.push(Change {
                        path: if path.is_empty() {
                            "state".into()
                        } else {
                            path.clone()
                        },
                        before: Some(x.to_string()),
                        after: None,
                    }),
                }
            }
            for y in left {
                out.push(Change {
                    path: if path.is_empty() {
                        "state".into()
                    } else {
                        path.clone()
                    },
                    before: None,
                    after: Some(y.to_string()),
                });
            }
        }
        _ => whole(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    #[allow(dead_code)]
    struct Node {
        id: u8,
        log: Vec<&'static str>,
        peer: Option<(u8, bool)>,
        state: Phase,
    }

    #[derive(Debug)]
    #[allow(dead_code)]
    enum Phase {
        Idle,
        Busy { since: u32 },
    }

    #[test]
    fn derived_debug_reads_back_and_prints_the_same() {
        let node = Node {
            id: 1,
            log: vec!["a", "b c"],
            peer: Some((2, true)),
            state: Phase::Busy { since: 3 },
        };
        let text = format!("{node:?}");
        let value = parse(&text);
        assert!(matches!(value, Value::Record(ref name, _) if name == "Node"));
        assert_eq!(value.to_string(), text);
        let json = serde_json::to_value(&value).unwrap();
        assert_eq!(json["id"], 1);
        assert_eq!(json["log"][1], "b c");
        assert_eq!(json["peer"]["Some"][1], true);
        assert_eq!(json["state"]["since"], 3);
    }

    #[test]
    fn the_diff_names_what_changed_and_nothing_else() {
        let a = parse("S { x: 1, ys: [1, 2], m: {1: A, 2: B}, set: {a, b} }");
        let b = parse("S { x: 1, ys: [1, 3], m: {1: A, 2: C, 3: D}, set: {b, c, d} }");
        let changes = diff(&a, &b);
        let text: Vec<String> = changes
            .iter()
            .map(|c| format!("{} {:?} {:?}", c.path, c.before, c.after))
            .collect();
        assert_eq!(
            text,
            [
                "ys[1] Some(\"2\") Some(\"3\")",
                "m[2] Some(\"B\") Some(\"C\")",
                "m[3] None Some(\"D\")",
                "set Some(\"a\") None",
                "set None Some(\"c\")",
                "set None Some(\"d\")",
            ]
        );
    }

    #[test]
    fn hand_written_forms_become_named_values() {
        let a = parse("rmState=[Working, Prepared] tmState=Init msgs={}");
        let b = parse("rmState=[Working, Committed] tmState=Committed msgs={Commit}");
        let text: Vec<String> = diff(&a, &b)
            .iter()
            .map(|c| format!("{} {:?} {:?}", c.path, c.before, c.after))
            .collect();
        assert_eq!(
            text,
            [
                "rmState[1] Some(\"Prepared\") Some(\"Committed\")",
                "tmState Some(\"Init\") Some(\"Committed\")",
                "msgs None Some(\"Commit\")",
            ]
        );
    }
}
