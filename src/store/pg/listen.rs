//! PostgreSQL: one dedicated listening connection per replica wakes its event streams.
//!
//! Every appended turn sends `NOTIFY triage_events, '<seq>'` in its transaction (delivered at
//! commit; ids only in the payload). This thread `LISTEN`s, and announces a sequence number to
//! the process only once it is readable: an event is readable when every older transaction has
//! ended (`pg/events.rs`), so after a notification it polls the horizon, briefly and then less
//! often, until the horizon passes the newest notified id. Streams always re-read the table from
//! their own cursor, so a lost notification loses nothing: after every (re)connect the thread
//! announces the newest readable event, which makes every stream look again.
//!
//! The same connection `LISTEN`s on `triage_reload`, whose payload names a shared document that
//! changed (`pg/docs.rs`): it is handed to `Wake::reload`. After every (re)connect `reload` is
//! called with `*` (every document), since changes made while disconnected were not notified.

use super::docs::RELOAD_CHANNEL;
use super::events::HORIZON;
use crate::store::events::Wake;
use anyhow::{Context, Result};
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls};
use std::time::{Duration, Instant};

/// The notification channel of live events.
pub(crate) const EVENTS_CHANNEL: &str = "triage_events";

/// How long the thread waits for a notification before checking `alive` again.
const IDLE: Duration = Duration::from_millis(500);
/// Horizon polls while a notified event is not readable yet: from the first to the last.
const POLL_FIRST: Duration = Duration::from_millis(5);
const POLL_MAX: Duration = Duration::from_millis(250);
/// How often an idle connection is checked (a server restart closes it; a query notices).
const HEARTBEAT: Duration = Duration::from_secs(5);
/// Reconnect backoff.
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Start the listening thread on its own connection (not one of the pool's).
pub(crate) fn spawn(mut config: postgres::Config, label: String, wake: Wake) -> Result<()> {
    config.application_name("triage-listen");
    std::thread::Builder::new()
        .name("pg-listen".into())
        .spawn(move || run(&config, &label, &wake))
        .context("spawning the PostgreSQL listener")?;
    Ok(())
}

fn run(config: &postgres::Config, label: &str, wake: &Wake) {
    let mut retry = RETRY_FIRST;
    let mut failing_since: Option<Instant> = None;
    while (wake.alive)() {
        match connect(config) {
            Ok((mut client, newest, committed)) => {
                if failing_since.take().is_some() {
                    tracing::info!(database = %label, "event listener reconnected");
                }
                retry = RETRY_FIRST;
                (wake.announce)(newest);
                (wake.reload)("*");
                // Events committed while no one listened but not readable yet (an older
                // transaction, in any database of the cluster, still open) are announced once
                // they are: their notifications went to the dead connection.
                if let Err(e) = listen(&mut client, wake, newest, committed) {
                    tracing::warn!(database = %label, error = %format!("{e:#}"), "event listener lost its connection");
                    failing_since = Some(Instant::now());
                }
            }
            Err(e) => {
                if failing_since.is_none() {
                    tracing::warn!(database = %label, error = %format!("{e:#}"), "event listener cannot connect; retrying");
                    failing_since = Some(Instant::now());
                }
                std::thread::sleep(retry);
                retry = (retry * 2).min(RETRY_MAX);
            }
        }
    }
}

/// Connect, `LISTEN`, and read the newest readable event and the newest committed one (after
/// `LISTEN`, so nothing committed in between is missed).
fn connect(config: &postgres::Config) -> Result<(Client, i64, i64)> {
    let mut c = config.connect(NoTls)?;
    c.batch_execute(&format!("LISTEN {EVENTS_CHANNEL}; LISTEN {RELOAD_CHANNEL}"))?;
    let newest = newest_readable(&mut c)?;
    let committed: i64 = c
        .query_one("SELECT COALESCE(MAX(seq), 0)::bigint FROM events", &[])?
        .get(0);
    Ok((c, newest, committed))
}

fn newest_readable(c: &mut Client) -> Result<i64> {
    let q = format!("SELECT COALESCE(MAX(seq), 0)::bigint FROM events WHERE seq < {HORIZON}");
    Ok(c.query_one(&q, &[])?.get(0))
}

fn horizon(c: &mut Client) -> Result<i64> {
    Ok(c.query_one(&format!("SELECT {HORIZON}"), &[])?.get(0))
}

/// Serve notifications until the connection fails (Err) or nobody listens (Ok); `pending` is
/// an event already committed that waits to be readable.
fn listen(c: &mut Client, wake: &Wake, mut announced: i64, pending: i64) -> Result<()> {
    let mut pending = pending.max(announced);
    let mut poll = POLL_FIRST;
    let mut checked = Instant::now();
    while (wake.alive)() {
        let wait = if pending > announced { poll } else { IDLE };
        let mut got = Vec::new();
        {
            let mut n = c.notifications();
            let mut it = n.timeout_iter(wait);
            while let Some(note) = it.next()? {
                got.push(note);
                if got.len() >= 1024 {
                    break;
                }
            }
        }
        for note in got {
            if note.channel() == EVENTS_CHANNEL {
                if let Ok(seq) = note.payload().parse::<i64>() {
                    pending = pending.max(seq);
                }
            } else if note.channel() == RELOAD_CHANNEL {
                (wake.reload)(note.payload());
            }
        }
        if pending > announced {
            if horizon(c)? > pending {
                (wake.announce)(pending);
                announced = pending;
                poll = POLL_FIRST;
            } else {
                poll = (poll * 2).min(POLL_MAX);
            }
        } else if c.is_closed() {
            anyhow::bail!("connection closed");
        } else if checked.elapsed() >= HEARTBEAT {
            c.batch_execute("SELECT 1")?;
            checked = Instant::now();
        }
    }
    Ok(())
}
