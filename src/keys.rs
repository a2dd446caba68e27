//! API keys: the `[auth]` config section, the `TRIAGE_API_KEYS` env format, key hashing and the
//! `triage keys new` generator. Only SHA-256 hashes of keys are ever stored or compared.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The environment variable whose keys are added to `[auth].keys`.
pub const ENV_VAR: &str = "TRIAGE_API_KEYS";

/// What a key may do. `admin` implies `inference`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Inference, reads and conversation work (the support platform's and agents' key).
    Inference,
    /// Changes to intents, the fault catalog and batch jobs (operators).
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 2] = [Scope::Inference, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Inference => "inference",
            Scope::Admin => "admin",
        }
    }

    /// `inference` or `admin` (case-insensitive).
    pub fn parse(s: &str) -> Result<Scope> {
        let s = s.trim();
        Scope::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
            .with_context(|| {
                format!(
                    "unknown scope `{}`: expected inference or admin",
                    s.chars().take(40).collect::<String>()
                )
            })
    }

    /// `inference,admin` into scopes (duplicates dropped).
    pub fn parse_list(s: &str) -> Result<Vec<Scope>> {
        let mut out = Vec::new();
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            let sc = Scope::parse(part)?;
            if !out.contains(&sc) {
                out.push(sc);
            }
        }
        Ok(out)
    }
}

/// One API key: its id (safe to log) and the SHA-256 of the key (never the key itself).
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// Names the key in logs, metrics and errors (letters, digits, `_`, `-`, `.`).
    pub id: String,
    /// Lowercase or uppercase hex SHA-256 of the key (64 digits), from `triage keys new`.
    pub sha256: String,
    pub scopes: Vec<Scope>,
    /// Requests per second (token bucket) for this key; default `limits.rate_per_key_per_sec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_sec: Option<f64>,
    /// Bucket size for this key; default `limits.rate_burst`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
}

/// Only the id and scopes: the hash never reaches a log line.
impl std::fmt::Debug for ApiKeyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyConfig")
            .field("id", &self.id)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl ApiKeyConfig {
    /// Whether this key may use an endpoint that needs `need` (admin implies inference).
    pub fn allows(&self, need: Scope) -> bool {
        self.scopes.contains(&Scope::Admin) || self.scopes.contains(&need)
    }

    /// The decoded hash (None when `sha256` is not 64 hex digits).
    pub fn hash(&self) -> Option<[u8; 32]> {
        decode_hash(&self.sha256)
    }
}

/// `[auth]`: who may call the API. With no keys (config or env) authentication is off.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Refuse to start when no key is configured.
    pub required: bool,
    /// Serve `/metrics` without a key (else it needs an `inference` key).
    pub metrics_public: bool,
    pub keys: Vec<ApiKeyConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            required: false,
            metrics_public: true,
            keys: Vec::new(),
        }
    }
}

impl AuthConfig {
    /// Authentication is on once any key is configured.
    pub fn enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Add the keys of a `TRIAGE_API_KEYS` value (see [`parse_env`]).
    pub fn merge_env(&mut self, value: &str) -> Result<()> {
        self.keys
            .extend(parse_env(value).with_context(|| format!("env {ENV_VAR}"))?);
        Ok(())
    }

    /// Check every key; errors name the key by index and id, never by its hash.
    pub fn check(&self) -> Result<()> {
        if self.required && self.keys.is_empty() {
            bail!("config: auth.required is true but no API key is configured (auth.keys or {ENV_VAR}); make one with `triage keys new`");
        }
        let mut ids = std::collections::HashSet::new();
        for (i, k) in self.keys.iter().enumerate() {
            check_id(&k.id).with_context(|| format!("config: auth.keys[{i}].id"))?;
            let at = format!("config: auth.keys[{i}] (`{}`)", k.id);
            if !ids.insert(k.id.as_str()) {
                bail!("{at}: the id is listed twice (ids must be unique)");
            }
            if k.hash().is_none() {
                bail!(
                    "{at}.sha256 must be 64 hex digits (the SHA-256 of the key, from `triage keys new`), got {} characters",
                    k.sha256.chars().count()
                );
            }
            if k.scopes.is_empty() {
                bail!("{at}.scopes is empty: give inference and/or admin");
            }
            check_rate(k.rate_per_sec, k.burst).with_context(|| at.clone())?;
        }
        Ok(())
    }
}

/// A rate is finite and >= 0 (0 = unlimited); a burst is >= 1.
pub fn check_rate(rate: Option<f64>, burst: Option<u32>) -> Result<()> {
    if let Some(r) = rate {
        if !r.is_finite() || r < 0.0 {
            bail!("rate_per_sec must be a number >= 0 (0 = no limit)");
        }
    }
    if burst == Some(0) {
        bail!("burst must be at least 1");
    }
    Ok(())
}

fn check_id(id: &str) -> Result<()> {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if id.is_empty() || id.len() > 64 || !id.chars().all(ok) {
        bail!("a key id must be 1-64 characters of letters, digits, `_`, `-` or `.`");
    }
    Ok(())
}

/// Parse `TRIAGE_API_KEYS`: entries separated by `;` or newlines, each
/// `ID:SHA256:SCOPES[:RATE[:BURST]]` with SCOPES comma-separated, e.g.
/// `web:3f2a...:inference;ops:9b1c...:inference,admin:5:10`. Empty RATE/BURST keep the defaults.
/// Errors name the entry by position and id, never echo the hash field.
pub fn parse_env(value: &str) -> Result<Vec<ApiKeyConfig>> {
    let mut out = Vec::new();
    let entries = value
        .split([';', '\n'])
        .map(str::trim)
        .filter(|e| !e.is_empty());
    for (i, entry) in entries.enumerate() {
        let parts: Vec<&str> = entry.split(':').map(str::trim).collect();
        let id = parts.first().copied().unwrap_or("");
        let at = format!(
            "entry {} (`{}`)",
            i + 1,
            id.chars().take(64).collect::<String>()
        );
        if !(3..=5).contains(&parts.len()) {
            bail!(
                "{at}: expected ID:SHA256:SCOPES[:RATE[:BURST]], got {} fields",
                parts.len()
            );
        }
        check_id(id).with_context(|| at.clone())?;
        if decode_hash(parts[1]).is_none() {
            bail!(
                "{at}: the second field must be the key's SHA-256 as 64 hex digits (not the key)"
            );
        }
        let scopes = Scope::parse_list(parts[2]).with_context(|| at.clone())?;
        let rate = match parts.get(3).filter(|s| !s.is_empty()) {
            Some(s) => Some(
                s.parse::<f64>()
                    .ok()
                    .with_context(|| format!("{at}: RATE must be a number"))?,
            ),
            None => None,
        };
        let burst = match parts.get(4).filter(|s| !s.is_empty()) {
            Some(s) => Some(
                s.parse::<u32>()
                    .ok()
                    .with_context(|| format!("{at}: BURST must be a whole number"))?,
            ),
            None => None,
        };
        check_rate(rate, burst).with_context(|| at.clone())?;
        out.push(ApiKeyConfig {
            id: id.to_string(),
            sha256: parts[1].to_ascii_lowercase(),
            scopes,
            rate_per_sec: rate,
            burst,
        });
    }
    Ok(out)
}

/// SHA-256 of a presented key.
pub fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// SHA-256 of a key as lowercase hex (what `sha256` holds).
pub fn hash_hex(key: &str) -> String {
    hex::encode(hash_key(key))
}

/// 64 hex digits into 32 bytes.
pub fn decode_hash(hex: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex, &mut out).ok()?;
    Some(out)
}

/// Equal in time independent of where the inputs differ (`subtle`).
pub fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

/// A fresh random key: `trg_` and 64 hex digits (256 bits from the OS-seeded CSPRNG).
pub fn generate() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("trg_{}", hex::encode(bytes))
}

/// A new key for `id` with `scopes`, as the text `triage keys new` prints: the key (shown once),
/// the `[[auth.keys]]` TOML entry and the `TRIAGE_API_KEYS` entry.
pub fn new_key_text(id: &str, scopes: &str) -> Result<String> {
    check_id(id).context("--id")?;
    let scopes = Scope::parse_list(scopes).context("--scopes")?;
    if scopes.is_empty() {
        bail!("--scopes: give inference and/or admin");
    }
    let key = generate();
    let hash = hash_hex(&key);
    let names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    let quoted: Vec<String> = names.iter().map(|s| format!("\"{s}\"")).collect();
    Ok(format!(
        "# API key for `{id}`: give it to the client now, it is not stored and cannot be shown again.\n\
         key: {key}\n\n\
         # config file (triage.toml):\n\
         [[auth.keys]]\n\
         id = \"{id}\"\n\
         sha256 = \"{hash}\"\n\
         scopes = [{}]\n\n\
         # or as a {ENV_VAR} entry (entries separated by `;`):\n\
         {id}:{hash}:{}\n",
        quoted.join(", "),
        names.join(",")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_round_trips_and_compares() {
        let h = hash_hex("secret");
        assert_eq!(h.len(), 64);
        let d = decode_hash(&h).unwrap();
        assert!(ct_eq(&d, &hash_key("secret")));
        assert!(!ct_eq(&d, &hash_key("secreT")));
        assert!(decode_hash(&h[..62]).is_none());
        assert!(decode_hash(&"g".repeat(64)).is_none());
        assert_eq!(decode_hash(&h.to_uppercase()), Some(d));
    }

    #[test]
    fn generated_keys_differ_and_new_text_has_hash_of_key() {
        assert_ne!(generate(), generate());
        let t = new_key_text("web", "inference").unwrap();
        let key = t.lines().find_map(|l| l.strip_prefix("key: ")).unwrap();
        assert!(t.contains(&format!("sha256 = \"{}\"", hash_hex(key))));
        assert!(t.contains(&format!("web:{}:inference", hash_hex(key))));
        let parsed = parse_env(t.lines().last().unwrap()).unwrap();
        assert_eq!(parsed[0].scopes, vec![Scope::Inference]);
        assert!(new_key_text("bad id", "inference").is_err());
        assert!(new_key_text("ok", "root").is_err());
    }
}
