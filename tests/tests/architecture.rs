//! The maps a newcomer reads stay true: ARCHITECTURE.md's rooms and what each may import, and
//! README.md's table of tables — each table's topic, DDL, writer and every reader (saved
//! queries of the API and the reconciler, Grafana dashboards). No services needed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository root")
        .to_path_buf()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The backticked words of a Markdown table cell.
fn ticked(cell: &str) -> Vec<String> {
    cell.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, w)| w.to_string())
        .collect()
}

/// The rows of the first Markdown table whose header starts with `first_column`.
fn table_rows(markdown: &str, first_column: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut inside = false;
    for line in markdown.lines() {
        let line = line.trim();
        if !line.starts_with('|') {
            if inside {
                break;
            }
            continue;
        }
        let cells: Vec<String> = line
            .trim_matches('|')
            .split(" | ")
            .map(|c| c.trim().to_string())
            .collect();
        if !inside {
            inside = cells.first().is_some_and(|c| c == first_column);
            continue;
        }
        if line.chars().all(|ch| matches!(ch, '|' | '-' | ':' | ' ')) {
            continue;
        }
        rows.push(cells);
    }
    rows
}

/// The `hudstream-*` crates a crate's `[dependencies]` name.
fn dependencies(crate_dir: &Path) -> BTreeSet<String> {
    let manifest: toml::Table = read(&crate_dir.join("Cargo.toml"))
        .parse()
        .expect("Cargo.toml");
    manifest
        .get("dependencies")
        .and_then(|d| d.as_table())
        .map(|d| {
            d.keys()
                .filter_map(|k| k.strip_prefix("hudstream-").map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_crate_imports_only_what_architecture_md_allows_it() {
    let root = root();
    let architecture = read(&root.join("ARCHITECTURE.md"));
    let rows = table_rows(&architecture, "Room");
    let mut allowed: BTreeMap<String, Option<BTreeSet<String>>> = BTreeMap::new();
    for row in &rows {
        let room = ticked(&row[0])
            .first()
            .expect("a room")
            .trim_end_matches('/')
            .to_string();
        let imports = &row[2];
        let set = if imports.contains("everything") {
            None
        } else {
            Some(ticked(imports).into_iter().collect())
        };
        allowed.insert(room, set);
    }
    let workspace: toml::Table = read(&root.join("Cargo.toml")).parse().expect("workspace");
    let members: Vec<String> = workspace["workspace"]["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m.as_str().expect("member").to_string())
        .collect();
    let mut problems = Vec::new();
    for member in &members {
        let Some(rule) = allowed.get(member) else {
            problems.push(format!(
                "{member}/ is a workspace member ARCHITECTURE.md does not list"
            ));
            continue;
        };
        // The binary's package is `hudstream` and the e2e crate's `hudstream-e2e`.
        let name = |m: &str| {
            if m == "tests" {
                "e2e".to_string()
            } else {
                m.to_string()
            }
        };
        if let Some(rule) = rule {
            for dependency in dependencies(&root.join(member)) {
                if !rule.contains(&dependency) && dependency != name(member) {
                    problems.push(format!(
                        "{member}/ imports {dependency}, which ARCHITECTURE.md does not allow it"
                    ));
                }
            }
        }
    }
    for room in allowed.keys() {
        if !members.contains(room) {
            problems.push(format!(
                "ARCHITECTURE.md lists {room}/, which is not a crate"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Who reads which table: every saved query (`api/queries`, `reconcile/queries`) and every
/// Grafana dashboard, as the README names them (`job_by_id`, `reconcile/stale_jobs`,
/// `grafana/ci-health`).
fn readers(root: &Path, tables: &BTreeSet<String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut add = |sql: &str, reader: String, pattern: &str| {
        let re = regex::Regex::new(pattern).expect("pattern");
        for c in re.captures_iter(sql) {
            if tables.contains(&c[1]) {
                out.entry(c[1].to_string())
                    .or_default()
                    .insert(reader.clone());
            }
        }
    };
    for (dir, prefix) in [("api/queries", ""), ("reconcile/queries", "reconcile/")] {
        for entry in std::fs::read_dir(root.join(dir)).expect("queries") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "sql") {
                let stem = path.file_stem().expect("stem").to_string_lossy();
                add(
                    &read(&path),
                    format!("{prefix}{stem}"),
                    r"\{database\}\.(\w+)",
                );
            }
        }
    }
    for entry in std::fs::read_dir(root.join("deploy/grafana/dashboards")).expect("dashboards") {
        let path = entry.expect("entry").path();
        let stem = path.file_stem().expect("stem").to_string_lossy();
        let dashboard: serde_json::Value =
            serde_json::from_str(&read(&path)).expect("dashboard JSON");
        let mut sql = String::new();
        collect_raw_sql(&dashboard, &mut sql);
        add(
            &sql,
            format!("grafana/{stem}"),
            r"(?i)(?:FROM|JOIN)\s+(\w+)",
        );
    }
    out
}

fn collect_raw_sql(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(sql) = map.get("rawSql").and_then(|s| s.as_str()) {
                out.push_str(sql);
                out.push('\n');
            }
            map.values().for_each(|v| collect_raw_sql(v, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_raw_sql(v, out)),
        _ => {}
    }
}

#[test]
fn the_readmes_table_of_tables_names_each_tables_topic_ddl_writer_and_every_reader() {
    let root = root();
    let readme = read(&root.join("README.md"));
    let rows = table_rows(&readme, "Table");
    let by_table: BTreeMap<String, &Vec<String>> = rows
        .iter()
        .map(|r| (ticked(&r[0]).first().cloned().unwrap_or_default(), r))
        .collect();
    let tables: BTreeSet<String> = hudstream_projections::all()
        .iter()
        .map(|e| e.table().to_string())
        .collect();
    let readers = readers(&root, &tables);
    let mut problems = Vec::new();
    for encoder in hudstream_projections::all() {
        let table = encoder.table();
        let Some(row) = by_table.get(table) else {
            problems.push(format!(
                "README.md's table of tables has no row for {table}"
            ));
            continue;
        };
        let [_, topic, _, ddl, writer, reads] = &row[..] else {
            problems.push(format!("{table}: the row has not six cells: {row:?}"));
            continue;
        };
        if ticked(topic).first().map(String::as_str) != Some(encoder.topic()) {
            problems.push(format!(
                "{table}: the row names topic {topic}, the projection reads {}",
                encoder.topic()
            ));
        }
        let creates = format!("{{database}}.{table}\n");
        match ticked(ddl).first() {
            Some(file) if read(&root.join("schemas/migrations").join(file)).contains(&creates) => {}
            other => problems.push(format!(
                "{table}: its DDL file {other:?} does not create it (CREATE TABLE … {{database}}.{table})"
            )),
        }
        let declares = [
            format!("table: \"{table}\""),
            format!("TABLE: &'static str = \"{table}\""),
        ];
        match ticked(writer).first() {
            Some(file)
                if declares
                    .iter()
                    .any(|d| read(&root.join("projections/src").join(file)).contains(d)) => {}
            other => problems.push(format!(
                "{table}: its writer {other:?} does not declare the table"
            )),
        }
        let named: BTreeSet<String> = ticked(reads).into_iter().collect();
        let actual = readers.get(table).cloned().unwrap_or_default();
        if named != actual {
            problems.push(format!(
                "{table}: README.md names readers {named:?}, but {actual:?} read it"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
