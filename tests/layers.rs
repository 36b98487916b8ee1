//! The crate's layers point one way (see `src/lib.rs`): every `crate::…` path in `src/` (in a
//! `use` or written out in code) may only name a module that its own top-level module is allowed
//! to import, by the table [`ALLOWED`]. A module missing from the table fails the test too, so a
//! new one has to be given its place.
//!
//! Run it alone with `cargo test --test layers`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Each top-level module of `src/` and the modules below it that it may import. Top to bottom:
/// server → kernel → {magics, engine, python} → cell → {protocol, display} → jupyter_server;
/// `paths` and `install` are leaves of their own. The domain crate (`dask_slurm`) is not ours and may be used
/// by any layer.
const ALLOWED: &[(&str, &[&str])] = &[
    ("server", &["kernel", "cell", "protocol"]),
    (
        "kernel",
        &[
            "magics", "engine", "python", "cell", "protocol", "display", "paths",
        ],
    ),
    // magics → python: `%%python`, `%python_env` and `%cluster use` drive the Python bridge.
    (
        "magics",
        &[
            "python",
            "cell",
            "display",
            "protocol",
            "paths",
            "jupyter_server",
        ],
    ),
    ("engine", &["cell", "display", "protocol"]),
    (
        "python",
        &["cell", "display", "protocol", "paths", "jupyter_server"],
    ),
    ("cell", &["protocol", "display"]),
    // display → jupyter_server: the card shows a dashboard link through the Jupyter server.
    ("display", &["jupyter_server"]),
    // The Jupyter server the kernel belongs to: its discovery, probes and the dashboard relay.
    ("jupyter_server", &[]),
    ("protocol", &[]),
    ("paths", &[]),
    ("install", &[]),
];

/// One `crate::…` path that names a module its file may not import.
#[derive(Debug)]
struct Violation {
    file: PathBuf,
    line: usize,
    from: String,
    to: String,
}

#[test]
fn no_import_points_up() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let table: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut violations = Vec::new();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 20, "found only {} files in src/", files.len());
    for file in &files {
        let module = module_path(&src, file);
        // lib.rs declares the layers and main.rs, the binary, sits above all of them.
        let Some(layer) = module.first() else {
            continue;
        };
        if layer == "main" {
            continue;
        }
        let allowed = table.get(layer.as_str()).unwrap_or_else(|| {
            panic!("src/{layer} is not in tests/layers.rs's table: give it its place")
        });
        let text = fs::read_to_string(file).unwrap();
        for (index, line) in text.lines().enumerate() {
            for to in imported_layers(&module, code_of(line)) {
                if to != *layer && !allowed.contains(&to.as_str()) {
                    violations.push(Violation {
                        file: file.strip_prefix(&src).unwrap().to_owned(),
                        line: index + 1,
                        from: layer.clone(),
                        to,
                    });
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports that point up (or sideways) against tests/layers.rs's table:\n{}",
        violations
            .iter()
            .map(|v| format!(
                "  src/{}:{}: {} imports {}\n",
                v.file.display(),
                v.line,
                v.from,
                v.to
            ))
            .collect::<String>()
    );
}

#[test]
fn the_table_has_no_cycle() {
    let table: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    // Depth-first search from every layer; a layer met again on the current path is a cycle.
    fn visit<'a>(
        layer: &'a str,
        table: &BTreeMap<&'a str, &'a [&'a str]>,
        path: &mut Vec<&'a str>,
    ) {
        assert!(!path.contains(&layer), "cycle: {path:?} → {layer}");
        path.push(layer);
        for below in table.get(layer).copied().unwrap_or_default() {
            visit(below, table, path);
        }
        path.pop();
    }
    for layer in table.keys() {
        visit(layer, &table, &mut Vec::new());
    }
}

#[test]
fn paths_are_read_like_the_compiler() {
    let up = ["magics".to_owned(), "cluster".to_owned(), "up".to_owned()];
    assert_eq!(
        imported_layers(
            &up,
            "use crate::kernel::Kernel; let x = crate::cell::Output::new;"
        ),
        ["kernel", "cell"]
    );
    assert_eq!(
        imported_layers(&up, "use super::super::args;"),
        Vec::<String>::new()
    );
    assert_eq!(
        imported_layers(&up, "use super::super::super::server::X;"),
        ["server"]
    );
    assert_eq!(
        imported_layers(&up, "use crate::{cell::Output, kernel};"),
        ["cell", "kernel"]
    );
    assert_eq!(code_of("let a = 1; // crate::kernel"), "let a = 1; ");
    assert_eq!(code_of("    //! [`crate::kernel`]").trim(), "");
}

/// Every `.rs` file below `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module a file is: `src/magics/cluster/up.rs` → `[magics, cluster, up]`, a `mod.rs` is its
/// folder, `src/lib.rs` is the crate root (`[]`).
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let mut parts: Vec<String> = file
        .strip_prefix(src)
        .unwrap()
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The line without its comment (a `//` outside a string; strings with `//` in them keep the
/// rest, which can only make the check stricter).
fn code_of(line: &str) -> &str {
    match line.find("//") {
        Some(i) if !line[..i].contains('"') => &line[..i],
        _ => line,
    }
}

/// The top-level modules that the paths on `line` of module `module` name: `crate::X…`,
/// `crate::{X::…, Y}` and `super::` chains that climb to the crate root.
fn imported_layers(module: &[String], line: &str) -> Vec<String> {
    let mut found = Vec::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        let preceded_by_ident = rest[..i]
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        let after = &rest[i + "crate::".len()..];
        if !preceded_by_ident {
            if let Some(group) = after.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    let name = ident(item.trim());
                    if !name.is_empty() {
                        found.push(name);
                    }
                }
            } else {
                found.push(ident(after));
            }
        }
        rest = after;
    }
    // `super::super::X` from a module `depth` levels deep reaches the root after `depth` steps.
    let mut rest = line;
    while let Some(i) = rest.find("super::") {
        let mut climbed = 0;
        let mut after = &rest[i..];
        while let Some(next) = after.strip_prefix("super::") {
            climbed += 1;
            after = next;
        }
        if climbed == module.len() {
            found.push(ident(after));
        }
        rest = after;
    }
    found.retain(|name| name != "self" && !name.is_empty());
    found
}
