//! `triage store migrate`: bring the configured store (SQLite file or PostgreSQL database) to
//! this binary's schema and say which version it is at; for deployments that migrate once,
//! before starting replicas (`triage serve` also migrates at start, under the same lock).

use crate::config::{Config, Overrides};
use crate::store::Store;
use anyhow::Result;
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum StoreCmd {
    /// Apply the schema migrations the store lacks (each once, cluster-wide) and print its version.
    Migrate(MigrateArgs),
}

#[derive(Args)]
pub struct MigrateArgs {
    /// TOML config file (its `[store]` section names the store).
    #[arg(long, env = "TRIAGE_CONFIG")]
    config: Option<PathBuf>,
    /// Model pack and data folder (where a SQLite store lives by default).
    #[arg(long, env = "TRIAGE_HOME")]
    home: Option<PathBuf>,
}

pub fn run(cmd: StoreCmd) -> Result<()> {
    match cmd {
        StoreCmd::Migrate(a) => {
            let ov = Overrides {
                home: a.home,
                ..Overrides::default()
            };
            let cfg = Config::load(a.config.as_deref(), &ov)?;
            let store = Store::open_configured(cfg.store.clone(), &cfg.home())?;
            let (at, latest) = store.schema_version()?;
            println!(
                "store: {} at schema version {at} (this binary's latest: {latest})",
                store.describe()
            );
            Ok(())
        }
    }
}
