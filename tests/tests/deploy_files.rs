//! The deployment files, checked without deploying them.
//!
//! `deploy/` holds what production runs: the Compose project, the systemd units, the Kubernetes
//! manifests, Prometheus' scrape configuration and alert rules, Grafana's data sources and
//! dashboards. None of it can run here (no Docker, no systemd, no cluster, no Prometheus, no
//! Grafana), so a mistake in any of them would first show in production: a configuration key
//! that does not exist, a port nothing listens on, a stage deployed one way but not another, a
//! subcommand that was renamed, a metric that is never emitted. What cannot run here is
//! validated here instead:
//!
//! - every file parses, and every hudstream configuration loads as hudstream's own `Config`;
//! - every `HUDSTREAM_*` variable is `HUDSTREAM_CONFIG` or names a key of the configuration
//!   reference, `deploy/hudstream.example.toml`;
//! - every port is one the reference names, or one of a few named third-party ports;
//! - every stage is deployed by Compose, systemd and Kubernetes alike, with health probes on
//!   the port it serves, and every subcommand the files invoke exists;
//! - every metric Prometheus and Grafana query is emitted by the code, and every data source a
//!   dashboard names is provisioned.
//!
//! Plain `#[test]`s: no broker and no ClickHouse needed. Each test collects every problem it
//! finds and then fails once, listing them all with the file and the item at fault.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Deserialize;
use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

/// The long-running stages, from the one list the binary has: one process each in production.
fn stages() -> Vec<&'static str> {
    hudstream::stages::STAGES.iter().map(|s| s.name).collect()
}

/// Ports of the third-party services deployed next to hudstream. Every other port a deployment
/// file uses must appear in the configuration reference.
const THIRD_PARTY_PORTS: [(u16, &str); 6] = [
    (
        9092,
        "Kafka client listener, also in kafka.brokers of the reference",
    ),
    (9093, "Kafka KRaft controller listener"),
    (
        8123,
        "ClickHouse HTTP interface, also in clickhouse.url of the reference",
    ),
    (9000, "ClickHouse native protocol"),
    (3000, "Grafana"),
    (9090, "Prometheus"),
];

/// The uid of the provisioned Prometheus data source: the dashboards' PromQL targets use it.
const PROMETHEUS_UID: &str = "hudstream-prometheus";

// ------------------------------------------------------------------------------------- files

fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn deploy_dir() -> PathBuf {
    repo_root().join("deploy")
}

/// `path` relative to the repository root, for messages.
fn shown(path: &Path) -> String {
    path.strip_prefix(repo_root())
        .unwrap_or(path)
        .display()
        .to_string()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", shown(path)))
}

/// A file's text, whatever its encoding (for scans of every file, binary ones included).
fn read_lossy(path: &Path) -> String {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", shown(path)));
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Every file under `dir`, recursively, in a stable order.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries =
            fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", shown(&dir)));
        for entry in entries {
            let path = entry
                .unwrap_or_else(|e| panic!("cannot list {}: {e}", shown(&dir)))
                .path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn has_extension(path: &Path, extensions: &[&str]) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| extensions.contains(&e))
}

fn files_with_extension(dir: &Path, extensions: &[&str]) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|path| has_extension(path, extensions))
        .collect()
}

fn assert_no_problems(check: &str, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{check}: {} problem(s)\n  - {}\n",
        problems.len(),
        problems.join("\n  - ")
    );
}

// -------------------------------------------------------------------------------------- YAML

/// The documents of a (multi-document) YAML text, with `<<` merge keys applied (Compose uses
/// them); empty documents are left out.
fn parse_yaml(text: &str) -> Result<Vec<Yaml>, String> {
    let mut documents = Vec::new();
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let mut value =
            Yaml::deserialize(document).map_err(|e| format!("document {}: {e}", index + 1))?;
        value
            .apply_merge()
            .map_err(|e| format!("document {}: merge keys: {e}", index + 1))?;
        if !value.is_null() {
            documents.push(value);
        }
    }
    Ok(documents)
}

fn yaml_file(path: &Path) -> Vec<Yaml> {
    parse_yaml(&read(path)).unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", shown(path)))
}

/// The one document of a single-document YAML file.
fn yaml_document(path: &Path) -> Yaml {
    yaml_file(path)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("{} holds no YAML document", shown(path)))
}

/// A sequence's items; nothing for anything else (a missing key included).
fn seq(value: &Yaml) -> &[Yaml] {
    value.as_sequence().map(Vec::as_slice).unwrap_or(&[])
}

fn scalar(value: &Yaml) -> Option<String> {
    match value {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A command line written as a YAML list, or as one string split on whitespace.
fn words(value: &Yaml) -> Vec<String> {
    match value {
        Yaml::String(s) => s.split_whitespace().map(str::to_string).collect(),
        _ => seq(value).iter().filter_map(scalar).collect(),
    }
}

fn has_text(value: &Yaml) -> bool {
    value.as_str().is_some_and(|s| !s.trim().is_empty())
}

// ---------------------------------------------------------------------------- configurations

fn example_path() -> PathBuf {
    deploy_dir().join("hudstream.example.toml")
}

fn compose_config_path() -> PathBuf {
    deploy_dir().join("compose/hudstream.toml")
}

fn toml_table(place: &str, text: &str) -> toml::Table {
    toml::from_str(text).unwrap_or_else(|e| panic!("{place} is not valid TOML: {e}"))
}

/// Loads `text` the way hudstream loads its configuration file (defaults, then the file, then
/// the `HUDSTREAM_*` environment), through a temporary file.
fn load_configuration(text: &str) -> Result<hudstream_runtime::Config, String> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "hudstream-deploy-files-{}-{}.toml",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let loaded = hudstream_runtime::Config::load(Some(path.as_path())).map_err(|e| e.to_string());
    let _ = fs::remove_file(&path);
    loaded
}

/// The hudstream configurations carried by ConfigMaps (data keys ending in `.toml`), as
/// (where, TOML text).
fn configmap_configurations(documents: &[(String, Yaml)]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for (file, doc) in documents {
        if doc["kind"].as_str() != Some("ConfigMap") {
            continue;
        }
        let Some(data) = doc["data"].as_mapping() else {
            continue;
        };
        for (key, value) in data {
            let (Some(key), Some(text)) = (key.as_str(), value.as_str()) else {
                continue;
            };
            if key.ends_with(".toml") {
                let name = doc["metadata"]["name"].as_str().unwrap_or("?");
                found.push((
                    format!("{file}: ConfigMap {name}, data.{key:?}"),
                    text.to_string(),
                ));
            }
        }
    }
    found
}

/// Keys the reference shows commented out, by section. Optional keys have no default to write
/// down, so the reference documents them as `# github_app_private_key_file = "..."`.
fn commented_out_keys(example: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut keys: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut section = String::new();
    for line in example.lines().map(str::trim) {
        if let Some(header) = line.strip_prefix('[') {
            section = header.split(']').next().unwrap_or("").trim().to_string();
        } else if let Some(comment) = line.strip_prefix('#') {
            let Some((key, _)) = comment.split_once('=') else {
                continue;
            };
            let key = key.trim();
            let is_key = !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !section.is_empty() && is_key {
                keys.entry(section.clone())
                    .or_default()
                    .insert(key.to_string());
            }
        }
    }
    keys
}

/// The port a stage serves /healthz, /readyz and /metrics on under `config`, or under the
/// reference's default where `config` does not set it.
fn stage_port(stage: &str, config: &toml::Table, reference: &toml::Table) -> Option<u16> {
    let setting = match hudstream::stages::find(stage)?.http {
        hudstream::stages::Http::Own(setting) => setting,
        hudstream::stages::Http::Metrics => "telemetry.metrics_listen",
    };
    let (section, key) = setting.split_once('.')?;
    let listen = [config, reference]
        .into_iter()
        .find_map(|table| table.get(section)?.get(key)?.as_str())?;
    parse_port(listen.rsplit_once(':')?.1)
}

/// Every string value of a TOML tree, with its dotted key.
fn toml_strings(value: &toml::Value, path: &str, out: &mut Vec<(String, String)>) {
    match value {
        toml::Value::String(s) => out.push((path.to_string(), s.clone())),
        toml::Value::Array(items) => {
            for item in items {
                toml_strings(item, path, out);
            }
        }
        toml::Value::Table(table) => {
            for (key, inner) in table {
                let here = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                toml_strings(inner, &here, out);
            }
        }
        _ => {}
    }
}

// ----------------------------------------------------------------------------------- tokens

/// Every `prefix` followed by one or more `allowed` characters, where the prefix does not
/// continue a longer word.
fn prefixed_tokens(text: &str, prefix: &str, allowed: fn(char) -> bool) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut from = 0;
    while let Some(found) = text[from..].find(prefix) {
        let start = from + found;
        let rest = &text[start + prefix.len()..];
        let len = rest.find(|c: char| !allowed(c)).unwrap_or(rest.len());
        let continues_a_word = text[..start]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        if len > 0 && !continues_a_word {
            tokens.push(text[start..start + prefix.len() + len].to_string());
        }
        from = start + prefix.len();
    }
    tokens
}

/// `HUDSTREAM_[A-Z0-9_]+`
fn environment_variables(text: &str) -> Vec<String> {
    prefixed_tokens(text, "HUDSTREAM_", |c: char| {
        c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'
    })
}

/// `hudstream_[a-z0-9_]+`
fn metric_names(text: &str) -> Vec<String> {
    prefixed_tokens(text, "hudstream_", |c: char| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
    })
}

// ------------------------------------------------------------------------------------ ports

/// A port number written as digits: 1..=65535.
fn parse_port(digits: &str) -> Option<u16> {
    if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u16>().ok().filter(|&port| port > 0)
}

fn port_from_number(number: u64) -> Option<u16> {
    u16::try_from(number).ok().filter(|&port| port > 0)
}

fn leading_digits(text: &str) -> &str {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    &text[..end]
}

/// Ports in free text, only where they are written as ports: `host:port` (`127.0.0.1:8080`,
/// `http://kafka:9092/`, `PLAINTEXT://:9092`, `1@kafka:9093`) and bash's `/dev/tcp/host/port`.
/// Other numbers (user ids, sizes, timeouts) are never taken for ports.
fn ports_in_text(text: &str) -> Vec<u16> {
    let bytes = text.as_bytes();
    let mut ports = Vec::new();
    for (colon, _) in text.match_indices(':') {
        let after_a_host = colon > 0
            && (bytes[colon - 1].is_ascii_alphanumeric()
                || matches!(bytes[colon - 1], b'.' | b'-' | b']' | b'/'));
        let digits = leading_digits(&text[colon + 1..]);
        let ends_there = !matches!(
            bytes.get(colon + 1 + digits.len()),
            Some(c) if c.is_ascii_alphanumeric() || *c == b'.'
        );
        if after_a_host && ends_there {
            ports.extend(parse_port(digits));
        }
    }
    for (at, prefix) in text.match_indices("/dev/tcp/") {
        if let Some((_host, rest)) = text[at + prefix.len()..].split_once('/') {
            ports.extend(parse_port(leading_digits(rest)));
        }
    }
    ports
}

/// The ports the configuration reference names: every 4- or 5-digit number right after a ':'
/// (`127.0.0.1:8080`, `kafka-1:9092`, and the per-stage metrics ports listed in a comment).
fn reference_ports(example: &str) -> BTreeSet<u16> {
    example
        .match_indices(':')
        .filter_map(|(colon, _)| {
            let digits = leading_digits(&example[colon + 1..]);
            if (4..=5).contains(&digits.len()) {
                parse_port(digits)
            } else {
                None
            }
        })
        .collect()
}

/// The ports of a Compose `ports:` or `expose:` entry: `8080`, `"8080:8080"`,
/// `"127.0.0.1:8123:8123"`, `"9000-9001:9000-9001/tcp"`, or the long form.
fn compose_entry_ports(entry: &Yaml) -> Vec<u16> {
    if let Some(number) = entry.as_u64() {
        return port_from_number(number).into_iter().collect();
    }
    if entry.is_mapping() {
        return ["target", "published"]
            .into_iter()
            .filter_map(|key| scalar(&entry[key]))
            .filter_map(|value| parse_port(&value))
            .collect();
    }
    let Some(text) = entry.as_str() else {
        return Vec::new();
    };
    let without_protocol = text.split('/').next().unwrap_or(text);
    without_protocol
        .split(':')
        .flat_map(|part| part.split('-'))
        .filter_map(parse_port)
        .collect()
}

/// Ports in a Kubernetes manifest, with where they are: numeric `containerPort`, `port`,
/// `targetPort`, `hostPort` and `nodePort` (probe ports included; named ports are not numbers),
/// `prometheus.io/port` annotations, and `host:port` in container `env` values.
fn k8s_ports(value: &Yaml, path: &str, out: &mut Vec<(String, u16)>) {
    match value {
        Yaml::Mapping(mapping) => {
            for (key, inner) in mapping {
                let key = key.as_str().unwrap_or("");
                let here = if path.is_empty() {
                    key.to_string()
                } else {
                    format!("{path}.{key}")
                };
                match key {
                    "containerPort" | "port" | "targetPort" | "hostPort" | "nodePort" => {
                        out.extend(
                            inner
                                .as_u64()
                                .and_then(port_from_number)
                                .map(|port| (here.clone(), port)),
                        );
                    }
                    "prometheus.io/port" => {
                        out.extend(
                            scalar(inner)
                                .as_deref()
                                .and_then(parse_port)
                                .map(|port| (here.clone(), port)),
                        );
                    }
                    "env" => {
                        for variable in seq(inner) {
                            let Some(value) = variable["value"].as_str() else {
                                continue;
                            };
                            let name = variable["name"].as_str().unwrap_or("?");
                            for port in ports_in_text(value) {
                                out.push((format!("{here}.{name}"), port));
                            }
                        }
                    }
                    _ => {}
                }
                k8s_ports(inner, &here, out);
            }
        }
        Yaml::Sequence(items) => {
            for (index, item) in items.iter().enumerate() {
                k8s_ports(item, &format!("{path}[{index}]"), out);
            }
        }
        _ => {}
    }
}

// ----------------------------------------------------------------------------------- compose

fn compose_path() -> PathBuf {
    deploy_dir().join("compose/compose.yaml")
}

/// Compose's services (merge keys applied), by name.
fn compose_services() -> BTreeMap<String, Yaml> {
    let path = compose_path();
    let compose = yaml_document(&path);
    let services = compose["services"]
        .as_mapping()
        .unwrap_or_else(|| panic!("{} has no services", shown(&path)));
    services
        .iter()
        .map(|(name, service)| (name.as_str().unwrap_or("?").to_string(), service.clone()))
        .collect()
}

/// `hudstream`, `hudstream:latest`, `registry.example.com:5000/hudstream:0.1.0`, ...
fn is_hudstream_image(image: &str) -> bool {
    let last = image.rsplit('/').next().unwrap_or(image);
    last.split([':', '@']).next() == Some("hudstream")
}

/// A Compose service running the hudstream image (whose ENTRYPOINT is `hudstream`, so its
/// `command` is hudstream's arguments).
fn is_hudstream_service(service: &Yaml) -> bool {
    service["image"].as_str().is_some_and(is_hudstream_image)
}

/// A service's `environment`, as a mapping or as a list of `KEY=value`.
fn compose_environment(service: &Yaml) -> Vec<(String, String)> {
    match &service["environment"] {
        Yaml::Mapping(mapping) => mapping
            .iter()
            .filter_map(|(key, value)| {
                Some((key.as_str()?.to_string(), scalar(value).unwrap_or_default()))
            })
            .collect(),
        list => seq(list)
            .iter()
            .filter_map(Yaml::as_str)
            .map(|entry| {
                let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
                (key.to_string(), value.to_string())
            })
            .collect(),
    }
}

// ----------------------------------------------------------------------------------- systemd

const UNIT_SECTIONS: [&str; 3] = ["Unit", "Service", "Install"];

struct SystemdUnit {
    file: String,
    name: String,
    /// (section, key, value), in file order.
    entries: Vec<(String, String, String)>,
}

impl SystemdUnit {
    fn values<'a>(&'a self, section: &'a str, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.entries
            .iter()
            .filter(move |(s, k, _)| s == section && k == key)
            .map(|(_, _, value)| value.as_str())
    }

    /// The words of ExecStart, without systemd's prefix characters (`-`, `@`, `+`, `!`, `:`).
    fn exec_start(&self) -> Option<Vec<String>> {
        let line = self.values("Service", "ExecStart").last()?;
        let line = line.trim_start_matches(['-', '@', '+', '!', ':']);
        let command: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        (!command.is_empty()).then_some(command)
    }
}

/// A unit file as systemd reads it: `[Section]` headers, `Key=value` lines, `#` and `;`
/// comments, `\` line continuations.
fn parse_unit(text: &str) -> Result<Vec<(String, String, String)>, String> {
    let mut entries = Vec::new();
    let mut section: Option<String> = None;
    let mut continued = String::new();
    for (index, raw) in text.lines().enumerate() {
        let line_number = index + 1;
        let line = raw.trim();
        if continued.is_empty()
            && (line.is_empty() || line.starts_with('#') || line.starts_with(';'))
        {
            continue;
        }
        if let Some(start) = line.strip_suffix('\\') {
            continued.push_str(start);
            continued.push(' ');
            continue;
        }
        let logical = std::mem::take(&mut continued) + line;
        if let Some(header) = logical.strip_prefix('[') {
            let name = header.strip_suffix(']').ok_or_else(|| {
                format!("line {line_number}: malformed section header {logical:?}")
            })?;
            if !UNIT_SECTIONS.contains(&name) {
                return Err(format!(
                    "line {line_number}: unexpected section [{name}] (expected one of {UNIT_SECTIONS:?})"
                ));
            }
            section = Some(name.to_string());
            continue;
        }
        let Some(current) = &section else {
            return Err(format!(
                "line {line_number}: {logical:?} comes before any [Section]"
            ));
        };
        let (key, value) = logical.split_once('=').ok_or_else(|| {
            format!(
                "line {line_number}: {logical:?} is neither a [Section], a comment nor Key=value"
            )
        })?;
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!(
                "line {line_number}: {key:?} is not a unit setting name"
            ));
        }
        entries.push((current.clone(), key.to_string(), value.trim().to_string()));
    }
    if !continued.is_empty() {
        return Err("the file ends in a line continuation".to_string());
    }
    Ok(entries)
}

fn unit_files() -> Vec<PathBuf> {
    files_with_extension(
        &deploy_dir().join("systemd"),
        &["service", "target", "socket", "timer", "path", "mount"],
    )
}

fn load_unit(path: &Path) -> Result<SystemdUnit, String> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("?")
        .to_string();
    let entries = parse_unit(&read(path)).map_err(|e| format!("{}: {e}", shown(path)))?;
    Ok(SystemdUnit {
        file: shown(path),
        name,
        entries,
    })
}

fn units() -> Vec<SystemdUnit> {
    unit_files()
        .iter()
        .map(|path| load_unit(path).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

// -------------------------------------------------------------------------------- kubernetes

fn k8s_documents() -> Vec<(String, Yaml)> {
    files_with_extension(&deploy_dir().join("k8s"), &["yaml", "yml"])
        .iter()
        .flat_map(|path| {
            yaml_file(path)
                .into_iter()
                .map(move |doc| (shown(path), doc))
        })
        .collect()
}

/// The pod template of a workload.
fn pod_template(doc: &Yaml) -> Option<&Yaml> {
    let template = match doc["kind"].as_str()? {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            &doc["spec"]["template"]
        }
        "CronJob" => &doc["spec"]["jobTemplate"]["spec"]["template"],
        _ => return None,
    };
    (!template.is_null()).then_some(template)
}

/// A container of the hudstream image in some workload.
struct K8sContainer {
    file: String,
    kind: String,
    workload: String,
    pod_annotations: Yaml,
    spec: Yaml,
}

impl K8sContainer {
    fn args(&self) -> Vec<String> {
        words(&self.spec["args"])
    }

    fn describe(&self) -> String {
        format!(
            "{}: {} {}, container {}",
            self.file,
            self.kind,
            self.workload,
            self.spec["name"].as_str().unwrap_or("?")
        )
    }

    /// The port a probe's `httpGet.port` designates: a number, or the name of a container port.
    fn probe_port(&self, probe: &str) -> Option<u16> {
        let port = &self.spec[probe]["httpGet"]["port"];
        if let Some(number) = port.as_u64() {
            return port_from_number(number);
        }
        let name = port.as_str()?;
        if let Some(number) = parse_port(name) {
            return Some(number);
        }
        seq(&self.spec["ports"])
            .iter()
            .find(|declared| declared["name"].as_str() == Some(name))
            .and_then(|declared| declared["containerPort"].as_u64())
            .and_then(port_from_number)
    }
}

fn hudstream_containers(documents: &[(String, Yaml)]) -> Vec<K8sContainer> {
    let mut containers = Vec::new();
    for (file, doc) in documents {
        let Some(template) = pod_template(doc) else {
            continue;
        };
        for key in ["initContainers", "containers"] {
            for spec in seq(&template["spec"][key]) {
                if spec["image"].as_str().is_some_and(is_hudstream_image) {
                    containers.push(K8sContainer {
                        file: file.clone(),
                        kind: doc["kind"].as_str().unwrap_or("?").to_string(),
                        workload: doc["metadata"]["name"].as_str().unwrap_or("?").to_string(),
                        pod_annotations: template["metadata"]["annotations"].clone(),
                        spec: spec.clone(),
                    });
                }
            }
        }
    }
    containers
}

// ------------------------------------------------------------------------------- subcommands

/// The subcommand of hudstream's arguments: the first word that is not a global option.
fn subcommand_of(args: &[String]) -> Option<&str> {
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" | "-c" => {
                args.next();
            }
            flag if flag.starts_with('-') => {}
            subcommand => return Some(subcommand),
        }
    }
    None
}

/// Checks that `args` invoke a real subcommand; returns it.
fn check_subcommand(
    problems: &mut Vec<String>,
    known: &BTreeSet<String>,
    place: &str,
    args: &[String],
) -> Option<String> {
    match subcommand_of(args) {
        None => {
            problems.push(format!("{place}: {args:?} names no hudstream subcommand"));
            None
        }
        Some(subcommand) if !known.contains(subcommand) => {
            problems.push(format!(
                "{place}: `{subcommand}` is not a hudstream subcommand (they are: {})",
                known.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
            None
        }
        Some(subcommand) => Some(subcommand.to_string()),
    }
}

// ----------------------------------------------------------------------------------- grafana

fn datasource_uid(datasource: &Json) -> Option<&str> {
    match datasource {
        Json::String(s) => Some(s.as_str()),
        Json::Object(object) => object.get("uid")?.as_str(),
        _ => None,
    }
}

/// Grafana's own data sources (`-- Grafana --`, `-- Mixed --`, `-- Dashboard --`) and template
/// variables (`${DS}`), which no provisioning file declares.
fn is_builtin_or_variable(datasource: &Json) -> bool {
    let uid = datasource_uid(datasource).unwrap_or("");
    let kind = datasource["type"].as_str().unwrap_or("");
    uid.starts_with('$')
        || uid.starts_with("-- ")
        || uid == "grafana"
        || matches!(kind, "grafana" | "datasource")
}

/// Every `datasource` value in a dashboard: panels, targets, template variables, annotations.
fn datasource_references<'a>(value: &'a Json, out: &mut Vec<&'a Json>) {
    match value {
        Json::Object(object) => {
            for (key, inner) in object {
                if key == "datasource" && !inner.is_null() {
                    out.push(inner);
                }
                datasource_references(inner, out);
            }
        }
        Json::Array(items) => {
            for item in items {
                datasource_references(item, out);
            }
        }
        _ => {}
    }
}

/// The PromQL of every panel target that queries the provisioned Prometheus (a target without
/// a data source of its own uses its panel's, a panel without one its row's), as (panel, expr).
fn prometheus_exprs(panels: &[Json], inherited: Option<&Json>, out: &mut Vec<(String, String)>) {
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or("(untitled)");
        let panel_datasource = panel
            .get("datasource")
            .filter(|d| !d.is_null())
            .or(inherited);
        let targets = panel["targets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for target in targets {
            let datasource = target
                .get("datasource")
                .filter(|d| !d.is_null())
                .or(panel_datasource);
            let queries_prometheus = datasource.is_some_and(|d| {
                datasource_uid(d) == Some(PROMETHEUS_UID)
                    || (d["uid"].is_null() && d["type"] == "prometheus")
            });
            if let (true, Some(expr)) = (queries_prometheus, target["expr"].as_str()) {
                out.push((title.to_string(), expr.to_string()));
            }
        }
        if let Some(nested) = panel["panels"].as_array() {
            prometheus_exprs(nested, panel_datasource, out);
        }
    }
}

/// The text of every Rust source of the product's crates (`<crate>/src/**/*.rs`), where metric
/// names are written as string literals. Not this harness: a metric must be emitted, not just
/// mentioned by a test.
fn product_sources() -> String {
    let root = repo_root();
    let mut sources = String::new();
    let crates =
        fs::read_dir(&root).unwrap_or_else(|e| panic!("cannot list {}: {e}", root.display()));
    for entry in crates {
        let dir = entry
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", root.display()))
            .path();
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if matches!(name, "target" | "tests") || name.starts_with('.') {
            continue;
        }
        let src = dir.join("src");
        if !src.is_dir() {
            continue;
        }
        for file in files_with_extension(&src, &["rs"]) {
            sources.push_str(&read(&file));
            sources.push('\n');
        }
    }
    sources
}

/// Whether `metric` (or, for a summary's or histogram's `_sum`/`_count`/`_bucket` series, its
/// base name) is a string literal of the sources.
fn is_emitted(metric: &str, sources: &str) -> bool {
    let quoted = |name: &str| sources.contains(&format!("\"{name}\""));
    quoted(metric)
        || ["_sum", "_count", "_bucket"]
            .into_iter()
            .any(|suffix| metric.strip_suffix(suffix).is_some_and(|base| quoted(base)))
}

// ------------------------------------------------------------------------------------- tests

#[test]
fn every_deploy_file_parses() {
    let deploy = deploy_dir();
    let mut problems = Vec::new();

    // YAML, multi-document; the Kubernetes documents are kept for the ConfigMap below.
    let mut k8s_documents = Vec::new();
    for file in files_with_extension(&deploy, &["yaml", "yml"]) {
        match parse_yaml(&read(&file)) {
            Ok(documents) if documents.is_empty() => {
                problems.push(format!("{}: holds no YAML document", shown(&file)));
            }
            Ok(documents) => {
                if file.starts_with(deploy.join("k8s")) {
                    k8s_documents.extend(documents.into_iter().map(|doc| (shown(&file), doc)));
                }
            }
            Err(e) => problems.push(format!("{}: not valid YAML: {e}", shown(&file))),
        }
    }
    for (file, doc) in &k8s_documents {
        for field in ["apiVersion", "kind"] {
            if !has_text(&doc[field]) {
                problems.push(format!("{file}: a document has no {field}"));
            }
        }
    }

    for file in files_with_extension(&deploy, &["json"]) {
        if let Err(e) = serde_json::from_str::<Json>(&read(&file)) {
            problems.push(format!("{}: not valid JSON: {e}", shown(&file)));
        }
    }

    for file in files_with_extension(&deploy, &["toml"]) {
        if let Err(e) = toml::from_str::<toml::Table>(&read(&file)) {
            problems.push(format!("{}: not valid TOML: {e}", shown(&file)));
        }
    }

    // Every hudstream configuration loads as one: the reference, Compose's, the ConfigMap's.
    let mut configurations = vec![
        (shown(&example_path()), read(&example_path())),
        (shown(&compose_config_path()), read(&compose_config_path())),
    ];
    let embedded = configmap_configurations(&k8s_documents);
    if embedded.is_empty() {
        problems.push(
            "deploy/k8s: no ConfigMap carries a hudstream configuration (a data key ending in .toml)"
                .to_string(),
        );
    }
    configurations.extend(embedded);
    for (place, text) in &configurations {
        if let Err(e) = load_configuration(text) {
            problems.push(format!(
                "{place}: does not load as a hudstream configuration: {e}"
            ));
        }
    }

    // systemd units: well formed, services start something, hudstream units they name exist.
    let unit_names: BTreeSet<String> = unit_files()
        .iter()
        .filter_map(|path| Some(path.file_name()?.to_str()?.to_string()))
        .collect();
    for path in unit_files() {
        let unit = match load_unit(&path) {
            Ok(unit) => unit,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        if unit.name.ends_with(".service") && unit.exec_start().is_none() {
            problems.push(format!("{}: no ExecStart= in [Service]", unit.file));
        }
        let dependencies = [
            "After",
            "Before",
            "Requires",
            "Wants",
            "BindsTo",
            "PartOf",
            "WantedBy",
            "RequiredBy",
        ];
        for key in dependencies {
            let named = unit
                .values("Unit", key)
                .chain(unit.values("Install", key))
                .flat_map(str::split_whitespace);
            for other in named {
                if other.starts_with("hudstream") && !unit_names.contains(other) {
                    problems.push(format!(
                        "{}: {key}={other}, but deploy/systemd has no {other}",
                        unit.file
                    ));
                }
            }
        }
    }

    assert_no_problems("deployment files that do not parse or load", &problems);
}

#[test]
fn every_environment_variable_is_a_configuration_key() {
    let example_text = read(&example_path());
    let example = toml_table(&shown(&example_path()), &example_text);
    let commented = commented_out_keys(&example_text);
    let local = deploy_dir().join("local");
    let mut problems = Vec::new();

    for file in files_under(&deploy_dir()) {
        if file.starts_with(&local) || file == example_path() {
            continue;
        }
        let variables: BTreeSet<String> = environment_variables(&read_lossy(&file))
            .into_iter()
            .collect();
        for variable in variables {
            if let Err(why) = check_variable(&variable, &example, &commented) {
                problems.push(format!("{}: {variable} {why}", shown(&file)));
            }
        }
    }

    assert_no_problems(
        "HUDSTREAM_* variables that are not HUDSTREAM_CONFIG or a key of deploy/hudstream.example.toml",
        &problems,
    );
}

/// `HUDSTREAM_CONFIG`, or `HUDSTREAM_<SECTION>__<KEY>` for a key of the reference (a key whose
/// value is a table, like `kafka.client`, takes any key below it).
fn check_variable(
    variable: &str,
    example: &toml::Table,
    commented: &BTreeMap<String, BTreeSet<String>>,
) -> Result<(), String> {
    let name = variable.strip_prefix("HUDSTREAM_").unwrap_or(variable);
    if !name.contains("__") {
        return if variable == "HUDSTREAM_CONFIG" {
            Ok(())
        } else {
            Err("is neither HUDSTREAM_CONFIG nor HUDSTREAM_<SECTION>__<KEY>".to_string())
        };
    }
    let parts: Vec<String> = name.split("__").map(str::to_lowercase).collect();
    let (section, key) = (&parts[0], &parts[1]);
    let Some(table) = example
        .get(section.as_str())
        .and_then(toml::Value::as_table)
    else {
        return Err(format!(
            "names a section [{section}] the reference does not have"
        ));
    };
    match table.get(key.as_str()) {
        Some(value) if parts.len() > 2 && !value.is_table() => Err(format!(
            "goes below {section}.{key}, which is not a table in the reference"
        )),
        Some(_) => Ok(()),
        None if parts.len() == 2
            && commented
                .get(section)
                .is_some_and(|keys| keys.contains(key)) =>
        {
            Ok(())
        }
        None => Err(format!(
            "names {section}.{key}, which is not in the reference"
        )),
    }
}

#[test]
fn every_port_is_in_the_configuration_reference() {
    let reference = reference_ports(&read(&example_path()));
    let third_party: BTreeMap<u16, &str> = THIRD_PARTY_PORTS.into_iter().collect();
    // (where, port) for every port a deployment file uses.
    let mut uses: Vec<(String, u16)> = Vec::new();
    let mut problems: Vec<String> = Vec::new();

    // Compose: published and exposed ports, healthchecks, environment values.
    let compose = shown(&compose_path());
    for (name, service) in &compose_services() {
        let place = |what: &str| format!("{compose}: services.{name}.{what}");
        for entry in seq(&service["ports"]) {
            uses.extend(
                compose_entry_ports(entry)
                    .into_iter()
                    .map(|p| (place("ports"), p)),
            );
        }
        for entry in seq(&service["expose"]) {
            uses.extend(
                compose_entry_ports(entry)
                    .into_iter()
                    .map(|p| (place("expose"), p)),
            );
        }
        let healthcheck = words(&service["healthcheck"]["test"]).join(" ");
        for port in ports_in_text(&healthcheck) {
            uses.push((place("healthcheck.test"), port));
        }
        for (key, value) in compose_environment(service) {
            for port in ports_in_text(&value) {
                uses.push((place(&format!("environment.{key}")), port));
            }
        }
    }

    // Dockerfiles: EXPOSE.
    let dockerfiles = files_under(&deploy_dir())
        .into_iter()
        .filter(|path| path.file_name().is_some_and(|name| name == "Dockerfile"));
    for path in dockerfiles {
        for line in read(&path).lines() {
            let Some(exposed) = line.trim().strip_prefix("EXPOSE ") else {
                continue;
            };
            for word in exposed.split_whitespace() {
                let port = word.split('/').next().and_then(parse_port);
                uses.extend(port.map(|p| (format!("{}: EXPOSE", shown(&path)), p)));
            }
        }
    }

    // Kubernetes: port fields, probe ports, prometheus.io/port annotations, env values.
    let documents = k8s_documents();
    for (file, doc) in &documents {
        let mut found = Vec::new();
        let name = doc["metadata"]["name"].as_str().unwrap_or("?");
        k8s_ports(doc, "", &mut found);
        uses.extend(
            found
                .into_iter()
                .map(|(path, port)| (format!("{file}: {name} {path}"), port)),
        );
    }

    // Prometheus scrape targets.
    let prometheus_path = deploy_dir().join("prometheus/prometheus.yml");
    let prometheus = yaml_document(&prometheus_path);
    for job in seq(&prometheus["scrape_configs"]) {
        let job_name = job["job_name"].as_str().unwrap_or("?");
        for target in seq(&job["static_configs"])
            .iter()
            .flat_map(|s| seq(&s["targets"]))
        {
            let target = target.as_str().unwrap_or("");
            let port = target
                .rsplit_once(':')
                .and_then(|(_, port)| parse_port(port));
            match port {
                Some(port) => uses.push((
                    format!(
                        "{}: job {job_name}, target {target}",
                        shown(&prometheus_path)
                    ),
                    port,
                )),
                None => problems.push(format!(
                    "{}: job {job_name}, target {target:?} has no port",
                    shown(&prometheus_path)
                )),
            }
        }
    }

    // Grafana data sources: URLs and jsonData.port.
    for path in files_with_extension(
        &deploy_dir().join("grafana/provisioning/datasources"),
        &["yaml", "yml"],
    ) {
        for doc in yaml_file(&path) {
            for datasource in seq(&doc["datasources"]) {
                let place = format!(
                    "{}: data source {}",
                    shown(&path),
                    datasource["uid"].as_str().unwrap_or("?")
                );
                for port in datasource["url"]
                    .as_str()
                    .map(ports_in_text)
                    .unwrap_or_default()
                {
                    uses.push((format!("{place} url"), port));
                }
                let json_port = datasource["jsonData"]["port"]
                    .as_u64()
                    .and_then(port_from_number);
                uses.extend(json_port.map(|p| (format!("{place} jsonData.port"), p)));
            }
        }
    }

    // systemd: host:port in Environment= (each unit's own metrics port).
    let mut unit_ports: BTreeMap<u16, Vec<String>> = BTreeMap::new();
    for unit in units() {
        for value in unit.values("Service", "Environment") {
            for port in ports_in_text(value) {
                uses.push((format!("{}: Environment={value}", unit.file), port));
                unit_ports.entry(port).or_default().push(unit.name.clone());
            }
        }
    }

    // The deployed hudstream configurations: listen addresses, broker and ClickHouse addresses.
    let mut configurations = vec![(shown(&compose_config_path()), read(&compose_config_path()))];
    configurations.extend(configmap_configurations(&documents));
    for (place, text) in &configurations {
        let mut strings = Vec::new();
        toml_strings(
            &toml::Value::Table(toml_table(place, text)),
            "",
            &mut strings,
        );
        for (key, value) in strings {
            for port in ports_in_text(&value) {
                uses.push((format!("{place}: {key} = {value:?}"), port));
            }
        }
    }

    problems.extend(
        uses.iter()
            .filter(|(_, port)| !reference.contains(port) && !third_party.contains_key(port))
            .map(|(place, port)| {
                format!("{place}: port {port} is neither in deploy/hudstream.example.toml nor a known third-party port")
            }),
    );
    // Units on one host share its ports: no two may bind the same one.
    for (port, names) in &unit_ports {
        if names.len() > 1 {
            problems.push(format!(
                "deploy/systemd: {} all set port {port} in Environment=; units on one host need one port each",
                names.join(", ")
            ));
        }
    }
    if !problems.is_empty() {
        problems.push(format!(
            "(the reference's ports are {reference:?}; the third-party ones {:?})",
            third_party
        ));
    }
    assert_no_problems("ports outside the configuration reference", &problems);
}

#[test]
fn every_stage_is_deployed_everywhere_with_probes() {
    let known: BTreeSet<String> = hudstream::cli::subcommands().into_iter().collect();
    let reference = toml_table(&shown(&example_path()), &read(&example_path()));
    let mut problems = Vec::new();

    // ------------------------------------------------------------------ Compose
    let compose = shown(&compose_path());
    let compose_config = toml_table(
        &shown(&compose_config_path()),
        &read(&compose_config_path()),
    );
    let services = compose_services();
    let hudstream_services: Vec<(&String, &Yaml)> = services
        .iter()
        .filter(|(_, service)| is_hudstream_service(service))
        .collect();
    for (name, service) in &hudstream_services {
        check_subcommand(
            &mut problems,
            &known,
            &format!("{compose}: services.{name}.command"),
            &words(&service["command"]),
        );
    }
    // The Compose service of each stage, for Prometheus' targets below.
    let mut stage_services: BTreeMap<&str, String> = BTreeMap::new();
    for stage in stages() {
        let found = hudstream_services.iter().find(|(_, service)| {
            words(&service["command"]).first().map(String::as_str) == Some(stage)
        });
        let Some((name, service)) = found else {
            problems.push(format!(
                "{compose}: no service of the hudstream image has a command starting with `{stage}`"
            ));
            continue;
        };
        stage_services.insert(stage, name.to_string());
        let healthcheck = &service["healthcheck"];
        let test = words(&healthcheck["test"]).join(" ");
        let port = stage_port(stage, &compose_config, &reference);
        if healthcheck["disable"].as_bool() == Some(true) || test.is_empty() {
            problems.push(format!(
                "{compose}: services.{name} ({stage}) has no healthcheck"
            ));
        } else if !test.contains("/healthz")
            || port.is_none_or(|p| !ports_in_text(&test).contains(&p))
        {
            problems.push(format!(
                "{compose}: services.{name} ({stage}) healthcheck {test:?} does not ask /healthz on the stage's port {port:?} (deploy/compose/hudstream.toml)"
            ));
        }
    }

    // ------------------------------------------------------------------ systemd
    let units = units();
    for stage in stages() {
        let name = format!("hudstream-{stage}.service");
        let Some(unit) = units.iter().find(|unit| unit.name == name) else {
            problems.push(format!("deploy/systemd: no {name}"));
            continue;
        };
        let exec_start = unit.values("Service", "ExecStart").last().unwrap_or("");
        if !exec_start.ends_with(&format!(" {stage}")) {
            problems.push(format!(
                "{}: ExecStart={exec_start} does not end with ` {stage}`",
                unit.file
            ));
        }
    }
    for unit in &units {
        let Some(command) = unit.exec_start() else {
            continue;
        };
        if !command[0].ends_with("hudstream") {
            continue;
        }
        let place = format!("{}: ExecStart", unit.file);
        let subcommand = check_subcommand(&mut problems, &known, &place, &command[1..]);
        let named_for = unit
            .name
            .strip_prefix("hudstream-")
            .and_then(|rest| rest.strip_suffix(".service"));
        if let (Some(subcommand), Some(named_for)) = (subcommand, named_for) {
            if subcommand != named_for {
                problems.push(format!(
                    "{place} runs `{subcommand}`, but the unit is named for `{named_for}`"
                ));
            }
        }
    }

    // ------------------------------------------------------------------ Kubernetes
    let documents = k8s_documents();
    let k8s_config = configmap_configurations(&documents)
        .first()
        .map(|(place, text)| toml_table(place, text))
        .unwrap_or_default();
    let containers = hudstream_containers(&documents);
    for container in &containers {
        check_subcommand(
            &mut problems,
            &known,
            &format!("{} args", container.describe()),
            &container.args(),
        );
    }
    for stage in stages() {
        let found = containers.iter().find(|c| {
            c.kind == "Deployment" && c.args().first().map(String::as_str) == Some(stage)
        });
        let Some(container) = found else {
            problems.push(format!(
                "deploy/k8s: no Deployment has a hudstream container with args [\"{stage}\", ...]"
            ));
            continue;
        };
        let place = container.describe();
        let port = stage_port(stage, &k8s_config, &reference);
        for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
            let actual = container.spec[probe]["httpGet"]["path"].as_str();
            if actual != Some(path) {
                problems.push(format!(
                    "{place}: {probe}.httpGet.path is {actual:?}, expected {path:?}"
                ));
            }
            let probed = container.probe_port(probe);
            if probed.is_none() || probed != port {
                problems.push(format!(
                    "{place}: {probe}.httpGet.port designates port {probed:?}, but {stage} serves on {port:?} (the ConfigMap's configuration)"
                ));
            }
        }
        for resource in ["cpu", "memory"] {
            if container.spec["resources"]["requests"][resource].is_null() {
                problems.push(format!("{place}: resources.requests.{resource} is not set"));
            }
        }
        let annotated = scalar(&container.pod_annotations["prometheus.io/port"]);
        if annotated.as_deref().and_then(parse_port) != port {
            problems.push(format!(
                "{place}: the pod's prometheus.io/port annotation is {annotated:?}, but {stage} serves /metrics on {port:?}"
            ));
        }
    }
    // What kustomization.yaml does not list is not deployed.
    let kustomization_path = deploy_dir().join("k8s/kustomization.yaml");
    let kustomization = yaml_document(&kustomization_path);
    let listed: BTreeSet<&str> = seq(&kustomization["resources"])
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    for resource in &listed {
        if !deploy_dir().join("k8s").join(resource).exists() {
            problems.push(format!(
                "{}: resource {resource} does not exist",
                shown(&kustomization_path)
            ));
        }
    }
    let unlisted: BTreeSet<&str> = documents
        .iter()
        .filter(|(_, doc)| pod_template(doc).is_some())
        .map(|(file, _)| file.as_str())
        .filter(|&file| !listed.contains(file.rsplit('/').next().unwrap_or(file)))
        .collect();
    for file in unlisted {
        problems.push(format!(
            "{file}: holds workloads but is not in the resources of {}",
            shown(&kustomization_path)
        ));
    }

    // ------------------------------------------------------------------ Prometheus
    let prometheus_path = deploy_dir().join("prometheus/prometheus.yml");
    let prometheus = yaml_document(&prometheus_path);
    for (stage, service) in &stage_services {
        let job = format!("hudstream-{stage}");
        let targets: Vec<&str> = seq(&prometheus["scrape_configs"])
            .iter()
            .filter(|config| config["job_name"].as_str() == Some(job.as_str()))
            .flat_map(|config| seq(&config["static_configs"]))
            .flat_map(|static_config| seq(&static_config["targets"]))
            .filter_map(Yaml::as_str)
            .collect();
        let expected = stage_port(stage, &compose_config, &reference)
            .map(|port| format!("{service}:{port}"))
            .unwrap_or_default();
        if !targets.contains(&expected.as_str()) {
            problems.push(format!(
                "{}: job {job} scrapes {targets:?}, expected {expected:?} (the Compose service and its port)",
                shown(&prometheus_path)
            ));
        }
    }

    // ------------------------------------------------------------------ prose
    // Commands quoted in comments and descriptions (`hudstream status`) must exist too.
    let local = deploy_dir().join("local");
    for file in files_under(&deploy_dir()) {
        if file.starts_with(&local) {
            continue;
        }
        let mentions: BTreeSet<String> =
            prefixed_tokens(&read_lossy(&file), "`hudstream ", |c: char| {
                c.is_ascii_lowercase() || c == '-'
            })
            .into_iter()
            .collect();
        for mention in mentions {
            let subcommand = &mention["`hudstream ".len()..];
            if !known.contains(subcommand) {
                problems.push(format!(
                    "{}: mentions `hudstream {subcommand}`, which is not a subcommand",
                    shown(&file)
                ));
            }
        }
    }

    assert_no_problems(
        "stages not deployed everywhere, or with bad probes or subcommands",
        &problems,
    );
}

#[test]
fn prometheus_and_grafana_name_only_real_metrics_and_datasources() {
    let sources = product_sources();
    let mut problems = Vec::new();

    // Metric names: anywhere in the Prometheus files (rules, comments, descriptions) and in the
    // dashboards' PromQL.
    let mut references: BTreeSet<(String, String)> = BTreeSet::new();
    for path in files_with_extension(&deploy_dir().join("prometheus"), &["yml", "yaml"]) {
        for metric in metric_names(&read(&path)) {
            references.insert((shown(&path), metric));
        }
    }
    let dashboards = files_with_extension(&deploy_dir().join("grafana/dashboards"), &["json"]);
    let parsed: Vec<(String, Json)> = dashboards
        .iter()
        .map(|path| {
            let dashboard: Json = serde_json::from_str(&read(path))
                .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", shown(path)));
            (shown(path), dashboard)
        })
        .collect();
    for (file, dashboard) in &parsed {
        let mut exprs = Vec::new();
        let panels = dashboard["panels"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        prometheus_exprs(panels, None, &mut exprs);
        for (title, expr) in exprs {
            for metric in metric_names(&expr) {
                references.insert((format!("{file}: panel {title:?}"), metric));
            }
        }
    }
    for (place, metric) in &references {
        if !is_emitted(metric, &sources) {
            problems.push(format!(
                "{place}: {metric} is not emitted (no \"{metric}\" in any <crate>/src/**/*.rs)"
            ));
        }
    }

    // Data sources: every one a dashboard names is provisioned.
    let mut uids = BTreeSet::new();
    let mut names = BTreeSet::new();
    for path in files_with_extension(
        &deploy_dir().join("grafana/provisioning/datasources"),
        &["yaml", "yml"],
    ) {
        for doc in yaml_file(&path) {
            for datasource in seq(&doc["datasources"]) {
                uids.extend(datasource["uid"].as_str().map(str::to_string));
                names.extend(datasource["name"].as_str().map(str::to_string));
            }
        }
    }
    let mut dashboard_uids: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (file, dashboard) in &parsed {
        match dashboard["uid"].as_str() {
            Some(uid) => dashboard_uids
                .entry(uid.to_string())
                .or_default()
                .push(file),
            None => problems.push(format!("{file}: the dashboard has no uid")),
        }
        let mut datasources = Vec::new();
        datasource_references(dashboard, &mut datasources);
        let unknown: BTreeSet<String> = datasources
            .into_iter()
            .filter(|datasource| !is_builtin_or_variable(datasource))
            .filter_map(|datasource| match datasource {
                // The legacy form names the data source.
                Json::String(name) => {
                    (!names.contains(name) && !uids.contains(name)).then(|| name.clone())
                }
                _ => datasource_uid(datasource)
                    .filter(|uid| !uids.contains(*uid))
                    .map(str::to_string),
            })
            .collect();
        for datasource in unknown {
            problems.push(format!(
                "{file}: data source {datasource:?} is not provisioned (deploy/grafana/provisioning/datasources has {uids:?})"
            ));
        }
    }
    for (uid, files) in &dashboard_uids {
        if files.len() > 1 {
            problems.push(format!("dashboards {files:?} share the uid {uid:?}"));
        }
    }

    // Alert rules: each says what fires, how badly and why.
    let alerts_path = deploy_dir().join("prometheus/alerts.yml");
    let alerts = yaml_document(&alerts_path);
    for group in seq(&alerts["groups"]) {
        let group_name = group["name"].as_str().unwrap_or("?");
        for rule in seq(&group["rules"]) {
            let place = format!(
                "{}: group {group_name}, rule {}",
                shown(&alerts_path),
                rule["alert"]
                    .as_str()
                    .or(rule["record"].as_str())
                    .unwrap_or("(unnamed)")
            );
            let mut required = vec![("expr", &rule["expr"])];
            if rule["record"].is_null() {
                required.extend([
                    ("alert", &rule["alert"]),
                    ("labels.severity", &rule["labels"]["severity"]),
                    ("annotations.summary", &rule["annotations"]["summary"]),
                ]);
            }
            for (field, value) in required {
                if !has_text(value) {
                    problems.push(format!("{place}: no {field}"));
                }
            }
        }
    }
    // prometheus.yml loads the rule files it names.
    let prometheus_path = deploy_dir().join("prometheus/prometheus.yml");
    let prometheus = yaml_document(&prometheus_path);
    for rule_file in seq(&prometheus["rule_files"])
        .iter()
        .filter_map(Yaml::as_str)
    {
        if !rule_file.contains('*') && !deploy_dir().join("prometheus").join(rule_file).exists() {
            problems.push(format!(
                "{}: rule_files names {rule_file}, which is not in deploy/prometheus",
                shown(&prometheus_path)
            ));
        }
    }

    assert_no_problems(
        "Prometheus and Grafana naming metrics or data sources that do not exist",
        &problems,
    );
}
