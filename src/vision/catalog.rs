//! The fault catalog (`models/faults.toml` or `screenshot.catalog`): known faults with titles,
//! error-code patterns, keywords, example phrasings and solutions; checked when loaded.

use super::polarity::{Polarity, PolaritySpec};
use anyhow::{bail, ensure, Context, Result};
use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Hint {
    Bot,
    Agent,
}

impl Hint {
    pub fn as_str(self) -> &'static str {
        match self {
            Hint::Bot => "bot",
            Hint::Agent => "agent",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    pub id: String,
    pub title_en: String,
    pub title_zh: String,
    #[serde(default)]
    pub codes: Vec<String>,
    #[serde(default)]
    pub keywords: Vec<String>,
    pub examples: Vec<String>,
    pub solution_en: String,
    pub solution_zh: String,
    pub route_hint: Hint,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    /// Failure and success cues; a catalog without them uses the shipped ones.
    #[serde(default)]
    polarity: Option<PolaritySpec>,
    faults: Vec<FaultSpec>,
}

/// A checked fault: its spec and compiled code patterns.
#[derive(Debug, Clone)]
pub struct Fault {
    pub spec: FaultSpec,
    pub codes: Vec<Regex>,
    /// Keywords, lowercased.
    pub keywords: Vec<String>,
}

impl Fault {
    pub fn title(&self, zh: bool) -> &str {
        if zh {
            &self.spec.title_zh
        } else {
            &self.spec.title_en
        }
    }

    pub fn solution(&self, zh: bool) -> &str {
        if zh {
            &self.spec.solution_zh
        } else {
            &self.spec.solution_en
        }
    }
}

#[derive(Debug, Clone)]
pub struct Catalog {
    pub faults: Vec<Fault>,
    pub polarity: Polarity,
    /// Where it came from (a path, or `builtin`).
    pub origin: String,
}

pub const BUILTIN: &str = include_str!("../../models/faults.toml");

/// The shipped catalog's polarity cues.
fn builtin_polarity() -> Result<Polarity> {
    let file: CatalogFile = toml::from_str(BUILTIN).map_err(|e| anyhow::anyhow!("{e}"))?;
    let spec = file
        .polarity
        .context("the shipped fault catalog has no [polarity]")?;
    Polarity::compile(&spec, "builtin")
}

impl Catalog {
    /// Parse and check a catalog; errors name the line or the key (`faults[3].codes[1]`).
    pub fn parse(text: &str, origin: &str) -> Result<Catalog> {
        let file: CatalogFile = toml::from_str(text)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("fault catalog {origin}"))?;
        let mut faults = Vec::new();
        let mut ids = std::collections::HashSet::new();
        for (i, f) in file.faults.iter().cloned().enumerate() {
            let at = format!("fault catalog {origin}: faults[{i}]");
            ensure!(
                !f.id.is_empty()
                    && f.id.len() <= 64
                    && f.id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
                "{at}.id `{}` must be 1-64 of a-z A-Z 0-9 _ -",
                f.id
            );
            ensure!(
                ids.insert(f.id.clone()),
                "{at}.id `{}` is listed twice",
                f.id
            );
            ensure!(
                !f.examples.is_empty(),
                "{at}.examples: at least one example"
            );
            for (k, v) in [
                ("title_en", &f.title_en),
                ("title_zh", &f.title_zh),
                ("solution_en", &f.solution_en),
                ("solution_zh", &f.solution_zh),
            ] {
                ensure!(!v.trim().is_empty(), "{at}.{k} is empty");
            }
            let mut codes = Vec::new();
            for (j, c) in f.codes.iter().enumerate() {
                match RegexBuilder::new(c)
                    .case_insensitive(true)
                    .size_limit(1 << 20)
                    .build()
                {
                    Ok(r) => codes.push(r),
                    Err(e) => bail!("{at}.codes[{j}]: not a valid pattern: {e}"),
                }
            }
            let keywords = f.keywords.iter().map(|k| k.to_lowercase()).collect();
            faults.push(Fault {
                spec: f,
                codes,
                keywords,
            });
        }
        ensure!(!faults.is_empty(), "fault catalog {origin}: no faults");
        let polarity = match &file.polarity {
            Some(p) => Polarity::compile(p, origin)?,
            None => builtin_polarity()?,
        };
        Ok(Catalog {
            faults,
            polarity,
            origin: origin.to_string(),
        })
    }

    /// The configured catalog file, or the built-in one.
    pub fn load(path: Option<&std::path::Path>) -> Result<Catalog> {
        let (text, origin) = Catalog::source(path)?;
        Catalog::parse(&text, &origin)
    }

    /// The text of the configured catalog file (or the built-in one) and where it came from.
    pub fn source(path: Option<&std::path::Path>) -> Result<(String, String)> {
        match path {
            None => Ok((BUILTIN.to_string(), "builtin:models/faults.toml".into())),
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read the fault catalog {}", p.display()))?;
                Ok((text, p.display().to_string()))
            }
        }
    }

    pub fn get(&self, id: &str) -> Option<&Fault> {
        self.faults.iter().find(|f| f.spec.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_catalog_is_valid_and_complete() {
        let c = Catalog::parse(BUILTIN, "builtin").unwrap();
        for id in [
            "payment_failed",
            "login_failed",
            "account_locked",
            "network_error",
            "not_found",
            "server_error",
            "permission_denied",
            "app_crash",
            "storage_full",
            "update_failed",
            "certificate_error",
            "device_offline",
        ] {
            assert!(c.get(id).is_some(), "{id} missing");
        }
    }

    #[test]
    fn malformed_catalogs_are_named() {
        let one = |extra: &str| {
            format!(
                "[[faults]]\nid = \"x\"\ntitle_en = \"X\"\ntitle_zh = \"X\"\nexamples = [\"x\"]\nsolution_en = \"s\"\nsolution_zh = \"s\"\nroute_hint = \"bot\"\n{extra}"
            )
        };
        assert!(Catalog::parse(&one(""), "t").is_ok());
        let m = format!(
            "{:#}",
            Catalog::parse(&one("codes = ['(unclosed']"), "t").unwrap_err()
        );
        assert!(m.contains("faults[0].codes[0]"), "{m}");
        let m = format!("{:#}", Catalog::parse(&one("colour = 1"), "t").unwrap_err());
        assert!(m.contains("line") && m.contains("colour"), "{m}");
        let twice = format!("{}\n{}", one(""), one(""));
        assert!(format!("{:#}", Catalog::parse(&twice, "t").unwrap_err()).contains("twice"));
        let bad = one("").replace("route_hint = \"bot\"", "route_hint = \"robot\"");
        assert!(Catalog::parse(&bad, "t").is_err());
    }
}
