//! Facts about the server under test and evaluation of `runOnRequirements`.
//!
//! [`detect`] asks the deployment (through the internal client) for its version (`buildInfo`),
//! topology (`hello`) and whether authentication is in use (credentials in the URI);
//! [`unmet`] evaluates a list of `runOnRequirement` objects against those facts and returns the
//! reason to skip when none is satisfied. Server parameters (`serverParameters`) are fetched with
//! `getParameter` on demand and cached.

use std::collections::HashMap;
use std::fmt;

use bson::{doc, Bson, Document};
use mongodb::Client;
use tokio::sync::Mutex;

use crate::matcher;

/// A `<major>.<minor>.<patch>` version; missing components are zero and anything after the
/// numeric components (e.g. `-rc1`) is discarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u64, pub u64, pub u64);

impl Version {
    pub fn parse(text: &str) -> Result<Version, String> {
        let core = text.split(['-', '+']).next().unwrap_or_default();
        let mut parts = [0u64; 3];
        let mut count = 0;
        for (i, part) in core.split('.').enumerate() {
            if i >= 3 {
                break;
            }
            parts[i] = part
                .parse()
                .map_err(|_| format!("invalid version string {text:?}"))?;
            count += 1;
        }
        if count == 0 {
            return Err(format!("invalid version string {text:?}"));
        }
        Ok(Version(parts[0], parts[1], parts[2]))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topology {
    Single,
    ReplicaSet,
    Sharded,
    LoadBalanced,
}

impl Topology {
    pub fn spec_name(self) -> &'static str {
        match self {
            Topology::Single => "single",
            Topology::ReplicaSet => "replicaset",
            Topology::Sharded => "sharded",
            Topology::LoadBalanced => "load-balanced",
        }
    }
}

/// What the runner knows about the deployment under test.
pub struct ServerInfo {
    pub version: Version,
    pub topology: Topology,
    pub auth: bool,
    /// Cached `getParameter` answers (`None` = not available).
    parameters: Mutex<HashMap<String, Option<Bson>>>,
}

/// Whether the connection string carries credentials (`user@host`).
fn uri_has_credentials(uri: &str) -> bool {
    let rest = uri.split_once("://").map(|(_, r)| r).unwrap_or(uri);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    authority.contains('@')
}

fn uri_is_load_balanced(uri: &str) -> bool {
    uri.to_ascii_lowercase().contains("loadbalanced=true")
}

/// Determines the server version and topology through `client`.
pub async fn detect(client: &Client, uri: &str) -> Result<ServerInfo, String> {
    let admin = client.database("admin");
    let hello = admin
        .run_command(doc! {"hello": 1})
        .await
        .map_err(|e| format!("hello failed: {e}"))?;
    let build_info = admin
        .run_command(doc! {"buildInfo": 1})
        .await
        .map_err(|e| format!("buildInfo failed: {e}"))?;
    let version = match build_info.get_array("versionArray") {
        Ok(parts) if parts.len() >= 3 => {
            let nums: Vec<u64> = parts
                .iter()
                .take(3)
                .map(|p| matcher::as_f64(p).unwrap_or(0.0).max(0.0) as u64)
                .collect();
            Version(nums[0], nums[1], nums[2])
        }
        _ => Version::parse(
            build_info
                .get_str("version")
                .map_err(|_| format!("buildInfo reply has no version: {build_info}"))?,
        )?,
    };
    let topology = if uri_is_load_balanced(uri) || hello.contains_key("serviceId") {
        Topology::LoadBalanced
    } else if hello.get_str("msg") == Ok("isdbgrid") {
        Topology::Sharded
    } else if hello.contains_key("setName") {
        Topology::ReplicaSet
    } else {
        Topology::Single
    };
    Ok(ServerInfo {
        version,
        topology,
        auth: uri_has_credentials(uri),
        parameters: Mutex::new(HashMap::new()),
    })
}

impl ServerInfo {
    async fn parameter(&self, client: &Client, name: &str) -> Option<Bson> {
        let mut cache = self.parameters.lock().await;
        if let Some(cached) = cache.get(name) {
            return cached.clone();
        }
        let mut command = doc! {"getParameter": 1};
        command.insert(name, 1);
        let value = client
            .database("admin")
            .run_command(command)
            .await
            .ok()
            .and_then(|reply| reply.get(name).cloned());
        cache.insert(name.to_string(), value.clone());
        value
    }
}

/// Evaluates `runOnRequirements`: `Ok(None)` when at least one requirement is met (or the list
/// is empty), `Ok(Some(reason))` when the tests must be skipped.
pub async fn unmet(
    requirements: &[Bson],
    info: &ServerInfo,
    client: &Client,
) -> Result<Option<String>, String> {
    if requirements.is_empty() {
        return Ok(None);
    }
    let mut reasons = Vec::new();
    for requirement in requirements {
        let Bson::Document(req) = requirement else {
            return Err(format!(
                "runOnRequirement is not a document: {}",
                matcher::show(requirement)
            ));
        };
        match unmet_one(req, info, client).await? {
            None => return Ok(None),
            Some(reason) => reasons.push(reason),
        }
    }
    Ok(Some(format!(
        "requirements not met: {}",
        reasons.join("; ")
    )))
}

async fn unmet_one(
    req: &Document,
    info: &ServerInfo,
    client: &Client,
) -> Result<Option<String>, String> {
    for (key, value) in req {
        let reason = match key.as_str() {
            "minServerVersion" => {
                let min = Version::parse(value.as_str().unwrap_or_default())?;
                (info.version < min).then(|| format!("needs server >= {min}"))
            }
            "maxServerVersion" => {
                let max = Version::parse(value.as_str().unwrap_or_default())?;
                (info.version > max).then(|| format!("needs server <= {max}"))
            }
            "topologies" => {
                let wanted: Vec<&str> = value
                    .as_array()
                    .map(|a| a.iter().filter_map(Bson::as_str).collect())
                    .unwrap_or_default();
                let ours = info.topology.spec_name();
                let ok = wanted.iter().any(|t| {
                    *t == ours || (*t == "sharded-replicaset" && info.topology == Topology::Sharded)
                });
                (!ok).then(|| format!("needs topology {} (have {ours})", wanted.join("|")))
            }
            // The runner never targets Atlas Serverless.
            "serverless" => {
                (value.as_str() == Some("require")).then(|| "needs Atlas Serverless".to_string())
            }
            "auth" => {
                let want = value.as_bool().unwrap_or(false);
                (want != info.auth)
                    .then(|| format!("needs auth {}", if want { "enabled" } else { "disabled" }))
            }
            "authMechanism" => Some("authMechanism requirements are not supported".to_string()),
            "csfle" => match value {
                Bson::Boolean(false) => None,
                _ => Some("needs client-side field level encryption".to_string()),
            },
            "serverParameters" => {
                let mut reason = None;
                if let Bson::Document(params) = value {
                    for (name, expected) in params {
                        let actual = info.parameter(client, name).await;
                        let ok = actual
                            .as_ref()
                            .is_some_and(|a| matcher::exact_eq(expected, a));
                        if !ok {
                            reason = Some(format!(
                                "needs server parameter {name}={} (have {})",
                                matcher::show(expected),
                                actual
                                    .as_ref()
                                    .map(matcher::show)
                                    .unwrap_or_else(|| "<unavailable>".into())
                            ));
                            break;
                        }
                    }
                }
                reason
            }
            other => Some(format!("unsupported requirement {other}")),
        };
        if reason.is_some() {
            return Ok(reason);
        }
    }
    Ok(None)
}

/// Checks version parsing and ordering at start-up.
pub fn self_test() -> Result<(), String> {
    let v = |s: &str| Version::parse(s);
    let cases = [
        ("4.0.10", Version(4, 0, 10)),
        ("3.6", Version(3, 6, 0)),
        ("5", Version(5, 0, 0)),
        ("4.9.0-alpha4-271-g7d5cf02", Version(4, 9, 0)),
        ("8.1.99", Version(8, 1, 99)),
    ];
    for (text, want) in cases {
        if v(text)? != want {
            return Err(format!("Version::parse({text:?}) != {want}"));
        }
    }
    if !(v("4.0.10")? > v("4.0.9")? && v("4.0.10")? > v("3.6")? && v("4.0.10")? < v("4.2.0")?) {
        return Err("version ordering is wrong".into());
    }
    if Version::parse("x.y").is_ok() {
        return Err("Version::parse accepted \"x.y\"".into());
    }
    Ok(())
}
