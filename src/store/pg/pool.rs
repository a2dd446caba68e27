//! A bounded pool of synchronous PostgreSQL connections, hand-written: the store needs only
//! "at most N clients, wait for a free one, drop a broken one", and its callers are already
//! blocking threads (`spawn_blocking`). `r2d2_postgres` would add a crate pair and a reaper
//! thread for the same. A broken connection (server restarted) is closed on return and the next
//! `get` connects afresh, so the store recovers by itself once the database is back.

use crate::error::{AppError, AppResult};
use parking_lot::{Condvar, Mutex};
use postgres::{Client, NoTls};
use std::ops::{Deref, DerefMut};
use std::time::Duration;

/// How long `get` waits for a free connection before failing.
const WAIT: Duration = Duration::from_secs(30);

pub(crate) struct Pool {
    config: postgres::Config,
    max: usize,
    state: Mutex<State>,
    freed: Condvar,
}

struct State {
    idle: Vec<Client>,
    open: usize,
}

/// A connection on loan; it goes back to the pool when dropped.
pub(crate) struct Conn<'a> {
    pool: &'a Pool,
    client: Option<Client>,
}

impl Pool {
    pub fn new(mut config: postgres::Config, max: usize) -> Pool {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        Pool {
            config,
            max: max.max(1),
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
        }
    }

    /// The connection settings.
    pub fn config(&self) -> &postgres::Config {
        &self.config
    }

    /// A free connection, a new one while fewer than `max` are open, or wait for one.
    pub fn get(&self) -> AppResult<Conn<'_>> {
        let mut st = self.state.lock();
        loop {
            if let Some(c) = st.idle.pop() {
                if c.is_closed() {
                    st.open -= 1;
                    continue;
                }
                return Ok(Conn {
                    pool: self,
                    client: Some(c),
                });
            }
            if st.open < self.max {
                st.open += 1;
                drop(st);
                return match self.config.connect(NoTls) {
                    Ok(c) => Ok(Conn {
                        pool: self,
                        client: Some(c),
                    }),
                    Err(e) => {
                        self.state.lock().open -= 1;
                        self.freed.notify_one();
                        Err(AppError::StoreDown {
                            message: format!(
                                "cannot connect to PostgreSQL: {:#}",
                                anyhow::Error::new(e)
                            ),
                        })
                    }
                };
            }
            if self.freed.wait_for(&mut st, WAIT).timed_out() {
                return Err(AppError::StoreDown {
                    message: format!(
                        "no free PostgreSQL connection after {}s (store.pool_size = {})",
                        WAIT.as_secs(),
                        self.max
                    ),
                });
            }
        }
    }
}

impl Deref for Conn<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        // Set in `get`, taken only in `drop`.
        self.client.as_ref().expect("pooled connection")
    }
}

impl DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().expect("pooled connection")
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        let mut st = self.pool.state.lock();
        match self.client.take() {
            Some(c) if !c.is_closed() => st.idle.push(c),
            _ => {
                // A closed connection: the server went away, so the idle ones are likely dead
                // too. Drop them all; the next `get` connects afresh.
                st.open -= 1 + st.idle.len();
                st.idle.clear();
            }
        }
        drop(st);
        self.pool.freed.notify_one();
    }
}

impl Drop for Pool {
    /// Closing a synchronous client blocks on its own runtime, which panics inside an async task
    /// (the last `Store` may well be dropped there, at shutdown): close them on a plain thread.
    fn drop(&mut self) {
        let idle = std::mem::take(&mut self.state.get_mut().idle);
        if !idle.is_empty() {
            let _ = std::thread::spawn(move || drop(idle)).join();
        }
    }
}
