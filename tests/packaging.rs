//! Packaging (issue 14, item 7): both licence files, the metadata crates.io
//! shows, the changelog, what `cargo package` ships, and that the test
//! runner, CI and the README name only files that exist.
//!
//! `cargo publish --dry-run` itself (which builds the packaged crate) is run
//! by hand; its last result is in verification/REPORT.md.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn manifest() -> toml::Table {
    read("Cargo.toml").parse().expect("Cargo.toml parses")
}

fn package_field(name: &str) -> toml::Value {
    manifest()["package"]
        .get(name)
        .unwrap_or_else(|| panic!("Cargo.toml has no package.{name}"))
        .clone()
}

fn strings(value: &toml::Value) -> Vec<String> {
    value
        .as_array()
        .expect("a list")
        .iter()
        .map(|item| item.as_str().expect("a string").to_owned())
        .collect()
}

#[test]
fn both_licences_are_shipped_and_named_in_the_metadata() {
    let mit = read("LICENSE-MIT");
    assert!(mit.contains("MIT License") || mit.starts_with("Permission is hereby granted"));
    assert!(mit.contains("Permission is hereby granted, free of charge"));
    let apache = read("LICENSE-APACHE");
    assert!(apache.contains("Apache License"));
    assert!(apache.contains("Version 2.0, January 2004"));
    assert!(apache.contains("TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION"));
    assert_eq!(package_field("license").as_str(), Some("MIT OR Apache-2.0"));
}

/// crates.io's category slugs that could fit haft (a category outside its
/// list is dropped with a warning on publish).
const CATEGORIES: &[&str] = &[
    "algorithms",
    "asynchronous",
    "command-line-utilities",
    "concurrency",
    "data-structures",
    "database",
    "database-implementations",
    "development-tools::testing",
    "network-programming",
];

#[test]
fn the_metadata_crates_io_shows_is_complete_and_well_formed() {
    for field in [
        "description",
        "repository",
        "documentation",
        "readme",
        "rust-version",
    ] {
        let value = package_field(field);
        assert!(
            value.as_str().is_some_and(|text| !text.trim().is_empty()),
            "package.{field} is empty"
        );
    }
    assert!(
        package_field("repository")
            .as_str()
            .unwrap()
            .starts_with("https://")
    );
    assert_eq!(
        package_field("documentation").as_str(),
        Some("https://docs.rs/haft")
    );
    let readme = package_field("readme");
    assert!(root().join(readme.as_str().unwrap()).is_file());
    // crates.io's rules: at most five keywords, each at most 20 ASCII
    // characters, letters, digits, `-` and `_`, starting with a letter.
    let keywords = strings(&package_field("keywords"));
    assert!((1..=5).contains(&keywords.len()), "{keywords:?}");
    for keyword in &keywords {
        assert!(keyword.len() <= 20, "{keyword}");
        assert!(
            keyword.starts_with(|c: char| c.is_ascii_alphabetic()),
            "{keyword}"
        );
        assert!(
            keyword
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{keyword}"
        );
    }
    let categories = strings(&package_field("categories"));
    assert!((1..=5).contains(&categories.len()), "{categories:?}");
    for category in &categories {
        assert!(CATEGORIES.contains(&category.as_str()), "{category}");
    }
}

#[test]
fn the_changelog_has_an_unreleased_section() {
    let changelog = read("CHANGELOG.md");
    assert!(changelog.starts_with("# Changelog"), "{changelog}");
    let unreleased = changelog
        .split("\n## ")
        .find(|section| section.starts_with("Unreleased"))
        .expect("a `## Unreleased` section");
    assert!(unreleased.lines().any(|line| line.starts_with("- ")));
}

/// What `cargo package --list` would ship.
fn packaged() -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["package", "--list", "--allow-dirty", "--offline"])
        .current_dir(root())
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo package --list: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The paths of the manifest's explicit targets.
fn target_paths() -> Vec<String> {
    let manifest = manifest();
    let mut paths = Vec::new();
    for kind in ["bin", "test", "bench", "example"] {
        for target in manifest
            .get(kind)
            .and_then(toml::Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = target["name"].as_str().unwrap();
            let path = match target.get("path") {
                Some(path) => path.as_str().unwrap().to_owned(),
                None => match kind {
                    "test" => format!("tests/{name}.rs"),
                    "bench" => format!("benches/{name}.rs"),
                    "example" => format!("examples/{name}.rs"),
                    _ => format!("src/bin/{name}.rs"),
                },
            };
            paths.push(path);
        }
    }
    paths
}

#[test]
fn cargo_package_ships_the_licences_the_changelog_and_every_target() {
    let shipped = packaged();
    for file in [
        "Cargo.toml",
        "Cargo.lock",
        "README.md",
        "CHANGELOG.md",
        "LICENSE-MIT",
        "LICENSE-APACHE",
        "verification/run-tests",
    ] {
        assert!(
            shipped.contains(file),
            "{file} is not packaged: {shipped:?}"
        );
    }
    for path in target_paths() {
        assert!(root().join(&path).is_file(), "{path} is missing");
        assert!(shipped.contains(&path), "{path} is not packaged");
    }
    for file in &shipped {
        assert!(
            !file.starts_with(".ci/") && !file.starts_with("fuzz/") && !file.starts_with("target"),
            "{file} should not be packaged"
        );
    }
}

/// The repository paths `text` names (`src/…`, `tests/…`, …), without a
/// trailing anchor or punctuation.
fn named_paths(text: &str) -> BTreeSet<String> {
    const ROOTS: [&str; 7] = [
        "src/",
        "tests/",
        "verification/",
        "examples/",
        "models/",
        "benches/",
        "fuzz/",
    ];
    let is_path_char = |c: char| c.is_ascii_alphanumeric() || "_./-".contains(c);
    let mut paths = BTreeSet::new();
    for (start, _) in text.char_indices() {
        let before = text[..start].chars().next_back();
        if before.is_some_and(is_path_char) {
            continue;
        }
        let rest = &text[start..];
        if !ROOTS.iter().any(|root| rest.starts_with(root)) {
            continue;
        }
        let end = rest.find(|c: char| !is_path_char(c)).unwrap_or(rest.len());
        paths.insert(rest[..end].trim_end_matches('.').to_owned());
    }
    paths
}

/// The names that follow `flag` in `script` (`--test loom` → `loom`).
fn flag_values<'a>(script: &'a str, flag: &str) -> Vec<&'a str> {
    let words: Vec<&str> = script.split_whitespace().collect();
    words
        .windows(2)
        .filter(|pair| pair[0] == flag)
        .map(|pair| pair[1])
        .collect()
}

#[test]
fn the_test_runner_ci_and_readme_name_only_files_that_exist() {
    for file in [
        "verification/run-tests",
        ".ci/run",
        "README.md",
        "CHANGELOG.md",
    ] {
        let text = read(file);
        for path in named_paths(&text) {
            assert!(
                Path::new(&root().join(&path)).exists(),
                "{file} names {path}, which does not exist"
            );
        }
    }
    let runner = read("verification/run-tests");
    assert!(
        named_paths(&runner).contains("verification/loom.rs") || runner.contains("--test loom")
    );
    let targets = target_paths();
    for test in flag_values(&runner, "--test") {
        let path = format!("tests/{test}.rs");
        assert!(
            root().join(&path).is_file()
                || targets.iter().any(|p| p.ends_with(&format!("/{test}.rs"))),
            "run-tests runs --test {test}, which is no test target"
        );
    }
    for example in flag_values(&runner, "--example") {
        let path = format!("examples/{example}.rs");
        assert!(root().join(&path).is_file(), "run-tests runs {path}");
    }
    // CI runs the runner, and the installer it needs, by these names.
    let ci = read(".ci/run");
    for script in ["verification/install-test-deps", "verification/run-tests"] {
        assert!(ci.contains(script), ".ci/run does not run {script}");
        let mode = std::fs::metadata(root().join(script))
            .unwrap()
            .permissions();
        #[cfg(unix)]
        assert!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o111 != 0,
            "{script} is not executable"
        );
        let _ = mode;
    }
}
